// Benchmark server: Node's own http.Server on net, on the inherited listening socket (fd 3), with
// the same small response as bench/servers/reactor-http.js. A UDP socket at fd 4 is left alone.
//   node node-http.js
'use strict'
const http = require('node:http')

const server = http.createServer((req, res) => res.end('hello world\n'))
server.listen({ fd: 3 })
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
server.on('listening', () => process.stdout.write('ready\n'))
