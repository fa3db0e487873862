// An echo server that keeps its listening socket across restarts through systemd's fd store
// (echo-fdstore.service: Type=notify, FileDescriptorStoreMax=, no socket unit).
//
// First start: nothing is passed, so it makes the socket (HOST, PORT) and gives systemd a copy
// to keep (FDSTORE=1 with FDNAME=web). On `systemctl restart` (or a crash, with Restart=) systemd
// keeps that copy open while this process stops and the next one starts, and passes it back as
// fd 3 with LISTEN_FDNAMES=web: the next process picks it by name. The socket never closes, so a
// client connecting in between waits in its backlog instead of being refused.
//
// Each process prints one JSON line per step (READY, DRAINED), for people and the tests.
// Environment: HOST, PORT (default 127.0.0.1:8080; 0 picks a free port), REACTOR_THREAD=0.
import { Reactor, Protocol, ServerFactory, SocketType, sockets, systemd } from 'reactor-socket'

const reactor = new Reactor({ thread: process.env.REACTOR_THREAD !== '0' })
const log = (event, fields = {}) => process.stdout.write(`${event} ${JSON.stringify({ pid: process.pid, ...fields })}\n`)

// A notification that cannot be delivered is worth a line, not a crash.
function notify(state, fds) {
  try {
    return systemd.notify(state, fds)
  } catch (err) {
    process.stderr.write(`notify ${JSON.stringify(state)}: ${err.message}\n`)
    return false
  }
}

let served = 0
class Echo extends Protocol {
  connectionMade() {
    served++
  }
  dataReceived(data) {
    this.transport.write(data)
  }
}

// What systemd passes back: the fd store's descriptors, by the FDNAME= they were stored under.
const passed = systemd.listenFds()
const stored = passed.find((l) => l.name === 'web' && l.type === SocketType.STREAM && l.listening)
let fd
if (stored) {
  fd = stored.fd // already in the store: not stored again
} else {
  fd = sockets.listenTcp({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8080), backlog: 1024 })
  // systemd keeps its own copy (sent with SCM_RIGHTS) until the service is stopped for good.
  notify('FDSTORE=1\nFDNAME=web', [fd])
}
const port = reactor.adoptStreamPort(fd, sockets.info(fd).family, ServerFactory.forProtocol(Echo))
sockets.close(fd) // the reactor keeps its own duplicate

notify('READY=1\nSTATUS=serving')
log('READY', { port: port.getHost().port, restored: stored !== undefined })

process.once('SIGTERM', async () => {
  notify('STOPPING=1')
  // Accepts nothing more (clients queue in the backlog for the next process), lets the
  // connections finish (10 s at most), and lets the process end.
  await port.drain({ deadline: 10000 })
  await reactor.close()
  log('DRAINED', { served })
})
