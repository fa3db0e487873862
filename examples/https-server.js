'use strict'
// HTTPS on an adopted listening socket: Node's own https.Server, fed with the reactor's connections
// wrapped in SocketStreams (a stream.Duplex that looks like a net.Socket).
//
//   node examples/https-server.js --cert cert.pem --key key.pem [--port 8443] [--no-thread]
//
// The certificate and key come from --cert/--key or $HTTPS_CERT/$HTTPS_KEY. The listening socket
// is the first one passed by systemd socket activation (systemd.listenFds(): LISTEN_PID, LISTEN_FDS,
// from fd 3), else made here with sockets.listenTcp on 127.0.0.1 (--port, default 0: any port).
//
//   GET  /        a greeting (to the name in the x-client header)
//   POST /sha256  the SHA-256 of the request body
//   GET  /quit    answers, then stops listening and exits once the open connections are done
//
// It prints "listening https://127.0.0.1:<port>" when ready, and exits by itself on /quit or SIGTERM.
const crypto = require('node:crypto')
const fs = require('node:fs')
const https = require('node:https')
const { Reactor, ServerFactory, sockets, systemd } = require('..')

function option(name) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}

/** The listening socket: the first one systemd (or a parent acting like it) passed, else our own. */
function listener() {
  const inherited = systemd.listenFds()
  if (inherited.length > 0) return { fd: inherited[0].fd, family: inherited[0].family }
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: Number(option('port') ?? 0) })
  return { fd, family: sockets.info(fd).family }
}

const certPath = option('cert') ?? process.env.HTTPS_CERT
const keyPath = option('key') ?? process.env.HTTPS_KEY
if (!certPath || !keyPath) {
  process.stderr.write('usage: https-server.js --cert cert.pem --key key.pem [--port n] [--no-thread]\n')
  process.exit(2)
}

const reactor = new Reactor({ thread: !process.argv.includes('--no-thread') })

const server = https.createServer(
  { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) },
  (req, res) => {
    if (req.method === 'POST' && req.url === '/sha256') {
      const hash = crypto.createHash('sha256')
      req.on('data', (chunk) => hash.update(chunk))
      req.on('end', () => res.end(hash.digest('hex') + '\n'))
      return
    }
    if (req.url === '/quit') {
      // Stop once this answer is out and its connection closed (closing idle connections any
      // sooner could cut it while TLS still writes it).
      res.setHeader('connection', 'close')
      res.end('bye\n')
      req.socket.once('close', stop)
      return
    }
    res.end(`hello over TLS, ${req.headers['x-client'] ?? 'stranger'}\n`)
  },
)

// The server never listens itself, so tell it that it is serving: this starts Node's tracking of its
// connections (headersTimeout, requestTimeout, and closing idle keep-alive connections on close()).
server.emit('listening')

// Every connection the reactor accepts becomes a SocketStream; https.Server does the TLS and HTTP.
const factory = ServerFactory.forStreams((stream) => {
  process.stdout.write(`connection from ${stream.remoteAddress}:${stream.remotePort}\n`)
  stream.setNoDelay(true) // as Node's servers do with the sockets they accept (noDelay: true)
  server.emit('connection', stream)
})

const { fd, family } = listener()
const port = reactor.adoptStreamPort(fd, family, factory)
sockets.close(fd) // the reactor holds its own duplicate

const host = port.getHost()
process.stdout.write(`listening https://${host.host.includes(':') ? `[${host.host}]` : host.host}:${host.port}\n`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await port.stopListening()
  // Closes idle keep-alive connections now and the others once their response is done; the
  // process exits when the last connection is gone.
  server.close()
  process.stdout.write('stopped listening\n')
}

process.once('SIGTERM', stop)
