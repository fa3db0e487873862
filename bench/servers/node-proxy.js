// Benchmark proxy: what a Node user would write — net.createServer, a net.connect upstream per
// client, and pipe() both ways.
//   node node-proxy.js <upstreamPort>      (fd 3: listening TCP socket)
'use strict'
const net = require('node:net')

const upstreamPort = Number(process.argv[2])

const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true })
  client.pipe(upstream).pipe(client)
  const end = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', end).on('close', end)
  upstream.on('error', end).on('close', end)
})
server.listen({ fd: 3 })

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
server.on('listening', () => process.stdout.write('ready\n'))
