// Benchmark server: Node's own net/dgram adopting the same inherited fds (listen({fd}), bind({fd})).
//   node node-server.js echo      (fd 3: listening TCP socket, fd 4: UDP socket)
'use strict'
const net = require('node:net')
const dgram = require('node:dgram')

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy())
  socket.pipe(socket)
})
server.listen({ fd: 3 })

const udp = dgram.createSocket('udp4')
udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address))
udp.bind({ fd: 4 })

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
server.on('listening', () => process.stdout.write('ready\n'))
