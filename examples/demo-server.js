'use strict'
// The server half of the demo (examples/demo.js starts it). It never creates a socket: it finds
// the ones it inherited the way a systemd socket-activated service does (sd_listen_fds(3)):
// LISTEN_FDS=n means fds 3 .. 3+n-1 are ours. It asks each fd what it is (sockets.info), adopts
// it into the reactor, closes its own number, and echoes over TCP and UDP until a "quit"
// datagram (or SIGTERM) arrives; then `await reactor.close()` and the process exits by itself.
const {
  reactor, AddressFamily, ServerFactory, Protocol, DatagramProtocol, ConnectionDone, SocketType, sockets,
} = require('..')

const SD_LISTEN_FDS_START = 3
const log = (line) => process.stdout.write(line + '\n')
const fmt = (a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)
const familyName = (f) => Object.keys(AddressFamily).find((k) => AddressFamily[k] === f) ?? String(f)

// Like sd_listen_fds(): the fds are ours only when LISTEN_PID is our pid. systemd sets it
// between fork and exec; a Node parent cannot (spawn has no hook that runs in the child before
// exec), so an absent LISTEN_PID is accepted here. A set one that is not ours means the
// variables were inherited from further up and are not meant for this process.
function listenFds() {
  const pid = process.env.LISTEN_PID
  const n = Number(process.env.LISTEN_FDS)
  delete process.env.LISTEN_PID // not passed on to our own children (sd_listen_fds(1))
  delete process.env.LISTEN_FDS
  if (pid !== undefined && Number(pid) !== process.pid) return []
  if (!Number.isInteger(n) || n < 1) return []
  return Array.from({ length: n }, (_, i) => SD_LISTEN_FDS_START + i)
}

const stats = { connections: 0, tcpBytes: 0, datagrams: 0, udpBytes: 0 }

class Echo extends Protocol {
  connectionMade() {
    this.n = ++stats.connections
    this.bytes = 0
    log(`tcp #${this.n} connected from ${fmt(this.transport.getPeer())}`)
  }

  dataReceived(data) {
    this.bytes += data.length
    stats.tcpBytes += data.length
    this.transport.write(data)
  }

  connectionLost(reason) {
    const how = reason instanceof ConnectionDone ? 'cleanly' : `with ${reason.code ?? reason.message}`
    log(`tcp #${this.n} closed ${how} (${reason.constructor.name}), ${this.bytes} bytes echoed`)
  }
}

class EchoFactory extends ServerFactory {
  startFactory() { log('tcp factory started') }
  stopFactory() { log('tcp factory stopped') }
}

class UdpEcho extends DatagramProtocol {
  startProtocol() { log(`udp echo listening on ${fmt(this.transport.getHost())}`) }
  stopProtocol() { log('udp echo stopped') }

  datagramReceived(data, addr) {
    if (data.toString() === 'quit') {
      log(`quit from ${fmt(addr)}`)
      shutdown()
      return
    }
    stats.datagrams++
    stats.udpBytes += data.length
    log(`udp ${data.length} bytes from ${fmt(addr)}`)
    this.transport.write(data, [addr.host, addr.port])
  }
}

let closing = null
function shutdown() {
  // Stops the ports, aborts what is still connected, joins the I/O thread. Afterwards nothing
  // holds the event loop, so the process exits with code 0 without process.exit().
  closing ??= reactor.close().then(() => {
    log(`closed: ${stats.connections} tcp connections, ${stats.tcpBytes} bytes; ` +
        `${stats.datagrams} datagrams, ${stats.udpBytes} bytes`)
  })
  return closing
}
process.once('SIGTERM', () => { log('SIGTERM'); shutdown() })

const fds = listenFds()
if (fds.length === 0) {
  console.error('demo-server: no inherited sockets (LISTEN_FDS is not set for this process)')
  process.exit(1)
}
const factory = new EchoFactory()
factory.protocol = Echo
for (const fd of fds) {
  const info = sockets.info(fd)
  if (info.type === SocketType.STREAM && info.listening) {
    const port = reactor.adoptStreamPort(fd, info.family, factory)
    log(`fd ${fd}: ${familyName(info.family)} stream, listening on ${fmt(port.getHost())} -> adoptStreamPort`)
  } else if (info.type === SocketType.DGRAM) {
    log(`fd ${fd}: ${familyName(info.family)} datagram socket -> adoptDatagramPort`)
    reactor.adoptDatagramPort(fd, info.family, new UdpEcho())
  } else {
    console.error(`demo-server: fd ${fd} is neither a listening stream socket nor a datagram socket`)
    process.exit(1)
  }
  // The reactor holds its own (close-on-exec) duplicate: our number can go at once.
  sockets.close(fd)
}
log('ready')
