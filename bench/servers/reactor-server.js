// Benchmark server: this package. Inherits a listening TCP socket (fd 3) and, as an echo server, a
// UDP socket (fd 4) from the benchmark parent, as a supervisor would hand them down. On stdin EOF
// it prints `stats <reactor.stats() as JSON>` on stdout, then exits.
//   node reactor-server.js <thread|hosted> echo
//   node reactor-server.js <thread|hosted> proxy <upstreamPort>   (the JS relay: bytes through JS)
'use strict'
const { Reactor, AddressFamily, ServerFactory, Protocol, DatagramProtocol, sockets } = require('../..')

const [mode, role, upstreamPort] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })

class Echo extends Protocol {
  dataReceived(data) {
    this.transport.write(data)
  }
}

class EchoDatagram extends DatagramProtocol {
  datagramReceived(data, addr) {
    this.transport.write(data, [addr.host, addr.port])
  }
}

/** One side of a relay: bytes from this connection go to `peer`; each side throttles the other. */
class Relay extends Protocol {
  constructor() {
    super()
    this.peer = null
  }
  dataReceived(data) {
    this.peer.transport.write(data)
  }
  connectionLost() {
    if (this.peer && this.peer.transport.connected) this.peer.transport.loseConnection()
  }
}

class ProxyFactory extends ServerFactory {
  buildProtocol() {
    const client = new Relay()
    const upstream = new Relay()
    client.peer = upstream
    upstream.peer = client
    const fd = sockets.connectTcp('127.0.0.1', Number(upstreamPort))
    try {
      reactor.adoptStreamConnection(fd, AddressFamily.INET, { buildProtocol: () => upstream })
    } finally {
      sockets.close(fd)
    }
    // Backpressure both ways: a full write buffer on one side pauses reading on the other.
    client.connectionMade = function () {
      this.transport.registerProducer(upstream.transport, true)
      upstream.transport.registerProducer(this.transport, true)
    }
    return client
  }
}

const factory = role === 'proxy' ? new ProxyFactory() : Object.assign(new ServerFactory(), { protocol: Echo })
reactor.adoptStreamPort(3, AddressFamily.INET, factory)
sockets.close(3)
if (role === 'echo') {
  // UDP_GRO is the opt-in a user makes for throughput (docs/adopting.md: UDP offloads): a GSO sender's
  // datagrams then arrive as one buffer per train, cut apart in the core.
  sockets.setUdpGro(4, true)
  reactor.adoptDatagramPort(4, AddressFamily.INET, new EchoDatagram(), 65535)
  sockets.close(4)
}
process.stdin.on('end', () => {
  // The harness reports batching and wake-ups from this line (bench/servers.mjs, STATS_PREFIX).
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
process.stdout.write('ready\n')
