// Memory benchmark server: the reactor as a proxy with the native relay (default bufferSize), on an
// inherited listening socket (fd 3). Prints its RSS (MiB) on "ready" and on each "rss" line of stdin.
//   node relay-memory-server.js <thread|hosted> <upstreamPort>
'use strict'
const { Reactor, AddressFamily, ServerFactory, Protocol, sockets } = require('../..')

const [mode, upstreamPort] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })
let relays = 0
/** Holds what upstream sends (paused) until the relay takes its transport over. */
class Upstream extends Protocol {
  connectionMade() {
    this.transport.pauseProducing()
  }
}
const rssMiB = () => process.memoryUsage.rss() / 2 ** 20

class Client extends Protocol {
  connectionMade() {
    this.transport.pauseProducing()
    reactor.connectTCP('127.0.0.1', Number(upstreamPort), ServerFactory.forProtocol(Upstream)).then((up) => {
      relays++
      reactor.relay(this.transport, up.transport)
    })
  }
}

reactor.adoptStreamPort(3, AddressFamily.INET, ServerFactory.forProtocol(Client))
sockets.close(3)
process.stdout.write(JSON.stringify({ rssMiB: rssMiB() }) + '\n')
let buf = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (d) => {
  buf += d
  while (buf.includes('\n')) {
    buf = buf.slice(buf.indexOf('\n') + 1)
    global.gc?.()
    process.stdout.write(JSON.stringify({ rssMiB: rssMiB(), relays }) + '\n')
  }
})
process.stdin.on('end', () => reactor.close().then(() => process.exit(0)))
