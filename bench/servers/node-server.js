// Benchmark server: Node's own net/dgram adopting the same inherited fds (listen({fd}), bind({fd})).
//   node node-server.js <echo|proxy> [upstreamPort]
'use strict'
const net = require('node:net')
const dgram = require('node:dgram')

const [role, upstreamPort] = process.argv.slice(2)

const server = net.createServer({ noDelay: true }, (socket) => {
  if (role === 'proxy') {
    const upstream = net.connect({ port: Number(upstreamPort), host: '127.0.0.1', noDelay: true })
    socket.pipe(upstream).pipe(socket)
    const end = () => {
      socket.destroy()
      upstream.destroy()
    }
    socket.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  } else {
    socket.on('error', () => socket.destroy())
    socket.pipe(socket)
  }
})
server.listen({ fd: 3 })

const udp = dgram.createSocket('udp4')
udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address))
udp.bind({ fd: 4 })

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
server.on('listening', () => process.stdout.write('ready\n'))
