'use strict'
// A DNS forwarder over UDP. Queries arrive on one socket (made here with a large receive buffer,
// or inherited from systemd: `systemd-socket-activate --datagram -l 53 node dns-forwarder.js ...`)
// and go to the upstream resolvers in turn; each client gets its own upstream socket, whose reply
// the kernel hands back to it, and one reply ends the session (`responses: 1`, as nginx's
// proxy_responses). All of it runs in the core: JavaScript only sets it up and prints figures.
//
//   node examples/dns-forwarder.js --upstream 127.0.0.1:5301 [--upstream 127.0.0.1:5302 ...]
//        [--listen 127.0.0.1:5300] [--recv-buffer 8388608] [--no-thread]
//
// Prints "listening on <host>:<port>, SO_RCVBUF <bytes>" once ready. SIGTERM/SIGINT stop it: it
// stops reading, lets the sessions in flight finish, prints "stopped <figures as JSON>" and exits.
const { Reactor, AddressFamily, sockets, systemd } = require('..')

function args(name) {
  return process.argv.flatMap((a, i) => (a === name ? [process.argv[i + 1]] : []))
}
function hostPort(text) {
  const at = text.lastIndexOf(':')
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) }
}

const upstream = args('--upstream').map(hostPort)
if (upstream.length === 0) {
  process.stderr.write('usage: node examples/dns-forwarder.js --upstream <ip:port> [--upstream <ip:port> ...] [--listen <ip:port>] [--recv-buffer <bytes>] [--no-thread]\n')
  process.exit(2)
}
// A burst of queries waits in the listening socket's buffer: the default (about 200 KiB, a few
// hundred queries) is what made a forwarder lose a third of a 2,000-query burst.
const recvBufferSize = Number(args('--recv-buffer')[0] ?? 8 << 20)

function listeningSocket() {
  const inherited = systemd.listenFds()
  if (inherited.length > 0) return { fd: inherited[0].fd, family: inherited[0].family, ours: false }
  const { host, port } = hostPort(args('--listen')[0] ?? '127.0.0.1:0')
  const fd = sockets.bindUdp({ host, port, recvBufferSize })
  return { fd, family: sockets.info(fd).family, ours: true }
}

const reactor = new Reactor({ thread: !process.argv.includes('--no-thread') })
const { fd, family, ours } = listeningSocket()
const forwarder = reactor.listenDatagramProxy(fd, family, {
  upstream,
  responses: 1, // a DNS query gets one answer
  idleTimeout: 5000, // ... or none: a lost query's session ends after 5 s
  // An inherited socket gets its buffer raised here (SO_RCVBUFFORCE where the process may).
  ...(ours ? {} : { recvBufferSize }),
})
sockets.close(fd) // the reactor holds its own duplicate
const here = forwarder.getHost()
const { recvBufferSize: kernelSet } = forwarder.stats()
process.stdout.write(`listening on ${family === AddressFamily.INET6 ? `[${here.host}]` : here.host}:${here.port}, SO_RCVBUF ${kernelSet}\n`)

async function stop() {
  await forwarder.stopListening()
  process.stdout.write(`stopped ${JSON.stringify(forwarder.stats())}\n`)
  await reactor.close()
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
