// Benchmark server: this package as a proxy with the native relay. Inherits a listening TCP socket
// (fd 3); for every client, connects upstream with reactor.connectTCP (non-blocking, in the core)
// and joins the two with reactor.relay (splice(2) in the core: no byte reaches JS). On stdin EOF it
// prints `stats <reactor.stats() as JSON>` on stdout, then exits.
//   node reactor-proxy.js <thread|hosted> <upstreamPort>
'use strict'
const { Reactor, AddressFamily, ServerFactory, Protocol, sockets } = require('../..')

const [mode, upstreamPort] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })
/** Holds what upstream sends (paused) until the relay takes its transport over. */
class Upstream extends Protocol {
  connectionMade() {
    this.transport.pauseProducing()
  }
}
const upstreamFactory = ServerFactory.forProtocol(Upstream)

class Client extends Protocol {
  connectionMade() {
    this.transport.pauseProducing()
    reactor.connectTCP('127.0.0.1', Number(upstreamPort), upstreamFactory).then(
      (upstream) => {
        try {
          reactor.relay(this.transport, upstream.transport)
        } catch {
          upstream.transport.loseConnection() // the client left while we connected
        }
      },
      () => this.transport.abortConnection(),
    )
  }
}

reactor.adoptStreamPort(3, AddressFamily.INET, ServerFactory.forProtocol(Client))
sockets.close(3)
process.stdout.write('ready\n')
process.stdin.on('end', () => {
  // The harness reports batching and wake-ups from this line (bench/servers.mjs, STATS_PREFIX).
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
