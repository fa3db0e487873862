'use strict'
// An HTTPS-terminating L4 proxy: the core accepts, runs the TLS handshake (the certificate chosen by
// the name the client asks for, SNI), decrypts, and relays the plaintext to an upstream HTTP server,
// with no JS per connection (and no Node `tls` anywhere). On SIGUSR2 it reads its certificate files
// again and swaps them in (port.setSecureContext): new handshakes use the new certificates,
// connections already established keep theirs, nothing restarts. Bad files are refused and the
// old certificates stay.
//
//   node examples/https-proxy.js --upstream 127.0.0.1:8080 --cert site.pem --key site.key
//        [--sni example.com=example.pem,example.key ...] [--listen 127.0.0.1:8443]
//        [--alpn http/1.1] [--proxy-header] [--no-thread]
//   kill -USR2 <pid>     # reload the certificates from disk
//
// It prints one JSON line per step (READY, RELOADED, RELOAD_FAILED, STATS on SIGUSR1), for
// people and for the tests.
const fs = require('node:fs')
const { Reactor, sockets } = require('..')

const args = parseArgs(process.argv.slice(2))
const reactor = new Reactor({ thread: !args.noThread })
const log = (event, fields = {}) => process.stdout.write(`${event} ${JSON.stringify({ pid: process.pid, ...fields })}\n`)

/** The TLS options, read from disk now (the files may have been replaced since the last read). */
function tlsOptions() {
  /** @type {Record<string, { cert: Buffer, key: Buffer }>} */
  const sni = {}
  for (const { name, cert, key } of args.sni) sni[name] = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) }
  return {
    cert: fs.readFileSync(args.cert),
    key: fs.readFileSync(args.key),
    sni,
    ALPNProtocols: args.alpn,
    handshakeTimeout: 10_000,
  }
}

const [host, portText] = splitHostPort(args.listen)
const fd = sockets.listenTcp({ host, port: Number(portText), backlog: 4096 })
const [upHost, upPort] = splitHostPort(args.upstream)
const port = reactor.listenProxy(fd, sockets.info(fd).family, {
  upstream: { host: upHost, port: Number(upPort) },
  tls: tlsOptions(),
  proxyHeader: args.proxyHeader ? 'v2' : undefined, // the client's address, for the upstream's logs
  connectTimeout: 3000,
  idleTimeout: 300_000,
})
sockets.close(fd) // the reactor holds its own duplicate
log('READY', { port: port.getHost().port })

process.on('SIGUSR2', () => {
  try {
    port.setSecureContext(tlsOptions())
    log('RELOADED', { handshakeFailures: port.stats().tlsHandshakeFailures })
  } catch (err) {
    log('RELOAD_FAILED', { code: err.code, message: err.message }) // the old certificates stay
  }
})

process.on('SIGUSR1', () => {
  const s = port.stats()
  log('STATS', {
    accepted: s.connectionsAccepted,
    active: s.connectionsActive,
    relayed: s.sessionsRelayed,
    handshakeFailures: s.tlsHandshakeFailures,
    toUpstream: s.bytesToUpstream,
    fromUpstream: s.bytesFromUpstream,
    userspaceSessions: reactor.stats().tlsSessionsUserspace,
  })
})

process.on('SIGTERM', async () => {
  await port.drain({ deadline: 10_000 })
  await reactor.close()
  process.exit(0)
})

function splitHostPort(text) {
  const at = text.lastIndexOf(':')
  return [text.slice(0, at).replace(/^\[|\]$/g, ''), text.slice(at + 1)]
}

function parseArgs(argv) {
  const out = { listen: '127.0.0.1:8443', sni: [], alpn: undefined, noThread: false, proxyHeader: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--upstream') out.upstream = argv[++i]
    else if (a === '--listen') out.listen = argv[++i]
    else if (a === '--cert') out.cert = argv[++i]
    else if (a === '--key') out.key = argv[++i]
    else if (a === '--sni') {
      const [name, files] = argv[++i].split('=')
      const [cert, key] = files.split(',')
      out.sni.push({ name, cert, key })
    } else if (a === '--alpn') (out.alpn ??= []).push(argv[++i])
    else if (a === '--proxy-header') out.proxyHeader = true
    else if (a === '--no-thread') out.noThread = true
    else throw new Error(`unknown argument ${a}`)
  }
  if (!out.upstream || !out.cert || !out.key) {
    process.stderr.write('usage: https-proxy.js --upstream host:port --cert file --key file [--sni name=cert,key] [--listen host:port]\n')
    process.exit(2)
  }
  return out
}
