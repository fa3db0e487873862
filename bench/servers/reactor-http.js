// Benchmark server: HTTP keep-alive with Node's own http.Server over this package's SocketStreams.
// Inherits a listening TCP socket as fd 3 from the benchmark parent (as from a supervisor). A UDP
// socket at fd 4, when the parent passes one, is left alone. Answers every request with a small body,
// as bench/servers/node-http.js does with Node's http on net.
//   node reactor-http.js <thread|hosted>
'use strict'
const http = require('node:http')
const { Reactor, AddressFamily, ServerFactory, sockets } = require('../..')

const [mode] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })

const server = http.createServer((req, res) => res.end('hello world\n'))
server.emit('listening') // starts Node's connection tracking (it never listens itself)

reactor.adoptStreamPort(3, AddressFamily.INET, ServerFactory.forStreams((stream) => server.emit('connection', stream)))
sockets.close(3)
process.stdin.on('end', () => reactor.close().then(() => process.exit(0)))
process.stdin.resume()
process.stdout.write('ready\n')
