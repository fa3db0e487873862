'use strict'
// A TCP reverse proxy. It adopts a listening socket (one systemd or a parent passed with
// LISTEN_FDS, or one it makes with sockets.listenTcp), connects upstream for each client with
// reactor.connectTCP (non-blocking, in the core), and joins the two with reactor.relay: the bytes
// move inside the core (splice(2)) and never reach JavaScript.
//
//   node examples/proxy.js --upstream 127.0.0.1:9000 [--listen 127.0.0.1:8000] [--no-thread]
//
// Prints "listening on <host>:<port>" once ready; SIGTERM/SIGINT stop it: it stops accepting,
// lets the relays finish, then exits.
const { Reactor, AddressFamily, ServerFactory, Protocol, sockets, systemd } = require('..')

function arg(name, fallback) {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : fallback
}
function hostPort(text) {
  const at = text.lastIndexOf(':')
  return [text.slice(0, at).replace(/^\[|\]$/g, ''), Number(text.slice(at + 1))]
}

const [upstreamHost, upstreamPort] = hostPort(arg('--upstream', '127.0.0.1:9000'))
const reactor = new Reactor({ thread: !process.argv.includes('--no-thread') })
const relays = new Set()
let served = 0

/** The upstream side: it holds what upstream sends (paused) until the relay takes its transport over,
 *  so that no byte reaches a protocol that would drop it. */
class Upstream extends Protocol {
  connectionMade() {
    this.transport.pauseProducing()
  }
}
const upstreamFactory = ServerFactory.forProtocol(Upstream)

/** The client side: hold its bytes until upstream is connected, then relay both ways. */
class Client extends Protocol {
  connectionMade() {
    this.transport.pauseProducing() // bytes wait in the kernel (then in the relay) meanwhile
    reactor.connectTCP(upstreamHost, upstreamPort, upstreamFactory, { timeout: 5000 }).then(
      (upstream) => {
        let relay
        try {
          relay = reactor.relay(this.transport, upstream.transport, { idleTimeout: 60_000 })
        } catch (err) {
          // The client went away while we connected (ERR_INVALID_STATE): let upstream go too.
          upstream.transport.loseConnection()
          return
        }
        relays.add(relay)
        relay.then(() => {
          relays.delete(relay)
          served++
        })
      },
      (err) => {
        process.stderr.write(`upstream ${upstreamHost}:${upstreamPort}: ${err.code ?? err.message}\n`)
        this.transport.abortConnection()
      },
    )
  }
}

function listeningSocket() {
  const inherited = systemd.listenFds()
  if (inherited.length > 0) return { fd: inherited[0].fd, family: inherited[0].family }
  const [host, port] = hostPort(arg('--listen', '127.0.0.1:0'))
  const fd = sockets.listenTcp({ host, port })
  return { fd, family: sockets.info(fd).family }
}

const { fd, family } = listeningSocket()
const port = reactor.adoptStreamPort(fd, family, ServerFactory.forProtocol(Client))
sockets.close(fd) // the reactor holds its own duplicate
const here = port.getHost()
process.stdout.write(`listening on ${family === AddressFamily.INET6 ? `[${here.host}]` : here.host}:${here.port}\n`)

async function stop() {
  await port.stopListening()
  await Promise.all(relays)
  process.stdout.write(`stopped after ${served} relayed connections\n`)
  await reactor.close()
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
