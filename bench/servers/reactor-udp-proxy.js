// Benchmark server: this package's UDP forwarder (reactor.listenDatagramProxy), on an inherited UDP
// socket (fd 3), to one upstream. On stdin EOF it prints `stats <reactor.stats()>` and
// `proxy <port.stats()>` on stdout, then exits.
//   node reactor-udp-proxy.js <thread|hosted> <upstreamPort> [responses]
//   (responses: 1 for DNS, as nginx's proxy_responses; omitted: sessions end by idle timeout)
'use strict'
const { Reactor, AddressFamily } = require('../..')

const [mode, upstreamPort, responses] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })
const port = reactor.listenDatagramProxy(3, AddressFamily.INET, {
  upstream: { host: '127.0.0.1', port: Number(upstreamPort) },
  idleTimeout: 10_000,
  ...(responses ? { responses: Number(responses) } : {}),
})
require('node:fs').closeSync(3) // the reactor holds its own duplicate
process.stdin.on('end', () => {
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  process.stdout.write(`proxy ${JSON.stringify(port.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
process.stdout.write('ready\n')
