// This package's TLS-terminating proxy port: accept, the TLS handshake, the upstream connect and
// the relay (decrypting from the client, plaintext to the upstream) all happen in the core; no
// JS runs per connection. Inherits a listening TCP socket (fd 3); the certificate is
// $BENCH_TLS_DIR/cert.pem and key.pem. On stdin EOF it prints `stats <reactor.stats() as JSON>`
// (and the port's figures on stderr), then exits.
//   node reactor-tls-proxy.js <thread|hosted> <upstreamPort>
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { Reactor, AddressFamily, sockets } = require('../..')

const [mode, upstreamPort] = process.argv.slice(2)
const dir = process.env.BENCH_TLS_DIR
const reactor = new Reactor({ thread: mode !== 'hosted' })
const port = reactor.listenProxy(3, AddressFamily.INET, {
  upstream: { host: '127.0.0.1', port: Number(upstreamPort) },
  tls: { cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) },
})
sockets.close(3)
process.stdout.write('ready\n')
process.stdin.on('end', () => {
  process.stdout.write(`stats ${JSON.stringify(reactor.stats())}\n`)
  process.stderr.write(`port ${JSON.stringify(port.stats())}\n`)
  reactor.close().then(() => process.exit(0))
})
process.stdin.resume()
