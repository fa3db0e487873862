// SLOT (another change builds the API): this package's native proxy port, where accept, the
// upstream connect and the relay all happen in the core and no JS runs per connection. Inherits a
// listening TCP socket (fd 3). On stdin EOF it prints `stats <reactor.stats() as JSON>` on stdout,
// then exits.
//   node reactor-listen-proxy.js <thread|hosted> <upstreamPort>
//
// bench/servers.mjs lists it (keys 'listen-thread', 'listen-hosted') and skips it with "not built
// yet" while `Reactor.prototype.listenProxy` is not a function, so this file never runs before the
// API exists. The call below is the expected shape — adopt fd 3 as the listening port, relay every
// client to 127.0.0.1:<upstreamPort> — and is to be fixed to the real signature when it lands.
'use strict'
const { Reactor, AddressFamily, sockets } = require('../..')

const [mode, upstreamPort] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })
if (typeof reactor.listenProxy !== 'function') {
  process.stderr.write('reactor-listen-proxy: reactor.listenProxy is not built yet\n')
  process.exit(3)
}

// EXPECTED SHAPE (check against the real API): listenProxy(fd, family, { host, port }).
reactor.listenProxy(3, AddressFamily.INET, { host: '127.0.0.1', port: Number(upstreamPort) })
sockets.close(3)
process.stdout.write('ready\n')
process.stdin.on('end', () => {
  // The harness reports batching and wake-ups from this line (bench/servers.mjs, STATS_PREFIX).
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
