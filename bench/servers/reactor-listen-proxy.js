// This package's native proxy port: accept, the upstream connect and the relay all happen in the
// core, and no JS runs per connection. Inherits a listening TCP socket (fd 3). On stdin EOF it
// prints `stats <reactor.stats() as JSON>` (and the port's figures on stderr), then exits.
//   node reactor-listen-proxy.js <thread|hosted> <upstreamPort> [v2]
// With `v2` it sends a PROXY v2 header to the upstream first (the cost of the header, measured).
'use strict'
const { Reactor, AddressFamily, sockets } = require('../..')

const [mode, upstreamPort, header] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })
if (typeof reactor.listenProxy !== 'function') {
  process.stderr.write('reactor-listen-proxy: reactor.listenProxy is not built yet\n')
  process.exit(3)
}

const port = reactor.listenProxy(3, AddressFamily.INET, {
  upstream: { host: '127.0.0.1', port: Number(upstreamPort) },
  proxyHeader: header === 'v2' ? 'v2' : undefined,
})
sockets.close(3)
process.stdout.write('ready\n')
process.stdin.on('end', () => {
  // The harness reports batching and wake-ups from this line (bench/servers.mjs, STATS_PREFIX).
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  process.stderr.write(`port ${JSON.stringify(port.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
