// Benchmark HTTP server: Node's own http.Server over this package's SocketStreams, on the inherited
// listening socket (fd 3). Answers every request with status 200 and its own URL as the body, as
// node-http.js does with Node's http on net (the load generator checks it).
//   node reactor-http.js <thread|hosted>      (fd 3: listening TCP socket)
'use strict'
const http = require('node:http')
const { Reactor, AddressFamily, ServerFactory, sockets } = require('../..')

const [mode] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })

const server = http.createServer((req, res) => {
  res.end(req.url)
})
server.emit('listening') // starts Node's connection tracking (the server never listens itself)

// setNoDelay(true): Node's http.Server sets TCP_NODELAY on every socket it accepts itself (its
// noDelay option, on by default); streams handed over with emit('connection') get it here.
const factory = ServerFactory.forStreams((stream) => server.emit('connection', stream.setNoDelay(true)))
reactor.adoptStreamPort(3, AddressFamily.INET, factory)
sockets.close(3) // the reactor holds its own duplicate

process.stdin.on('end', () => {
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
process.stdout.write('ready\n')
