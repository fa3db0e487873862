'use strict'
// HTTPS with the client's address, TLS in the core. The core accepts and runs the TLS handshake
// (rustls; no Node `tls` anywhere); Node's plain `http.Server` reads the decrypted bytes through a
// SocketStream, so `req.socket.remoteAddress` is the client's. Behind a load balancer that speaks
// the PROXY protocol (HAProxy's `send-proxy-v2`, nginx's `proxy_protocol on`, AWS NLB), pass
// --proxy-protocol <cidr>: the core reads the header first (only from that CIDR) and the address
// the application sees is the one in the header, the real client's.
//
//   node examples/https-client-address.js --cert cert.pem --key key.pem
//        [--listen 127.0.0.1:8443] [--proxy-protocol 10.0.0.0/8] [--no-thread]
//
// It answers every request with the client's address as JSON and prints "listening <host>:<port>"
// once ready. SIGTERM stops it: it stops accepting, lets open connections finish, and exits.
const fs = require('node:fs')
const http = require('node:http')
const { Reactor, ServerFactory, SocketStream, sockets, systemd } = require('..')

function option(name) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}
function hostPort(text) {
  const at = text.lastIndexOf(':')
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(text.slice(at + 1)) }
}

const reactor = new Reactor({ thread: !process.argv.includes('--no-thread') })
const balancer = option('proxy-protocol')

// recipe: https-client-address
const server = http.createServer((req, res) => {
  // req.socket is the SocketStream the factory below made: TLS is already off, in the core.
  const { remoteAddress, remotePort } = req.socket
  const tls = req.socket instanceof SocketStream ? req.socket.getProtocol() : null
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ client: remoteAddress, port: remotePort, tls }) + '\n')
})
server.emit('listening') // the server never listens itself: turn on its connection tracking

const inherited = systemd.listenFds() // socket activation, else a socket of our own
const fd = inherited[0]?.fd ?? sockets.listenTcp(hostPort(option('listen') ?? '127.0.0.1:0'))
const port = reactor.adoptStreamPort(fd, sockets.info(fd).family, ServerFactory.forStreams((stream) => server.emit('connection', stream.setNoDelay(true))), {
  tls: { cert: fs.readFileSync(option('cert')), key: fs.readFileSync(option('key')), ALPNProtocols: ['http/1.1'] },
  // Behind a load balancer: the PROXY header, read in the core, only from the balancer's addresses.
  ...(balancer ? { proxyProtocol: { trusted: [balancer] } } : {}),
})
sockets.close(fd) // the reactor holds its own duplicate
// end recipe

const here = port.getHost()
process.stdout.write(`listening ${here.host}:${here.port}\n`)

process.once('SIGTERM', async () => {
  await port.stopListening()
  server.close() // idle keep-alive connections now, the others once their response is out
})
