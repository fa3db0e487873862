// Benchmark HTTP server: Node's http.createServer on net, adopting the inherited listening socket.
// Answers every request with status 200 and its own URL as the body (the load generator checks it).
//   node node-http.js      (fd 3: listening TCP socket)
'use strict'
const http = require('node:http')

const server = http.createServer((req, res) => {
  res.end(req.url)
})
server.listen({ fd: 3 })

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
server.on('listening', () => process.stdout.write('ready\n'))
