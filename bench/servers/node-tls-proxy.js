// Benchmark TLS-terminating proxy: what a Node user would write — tls.createServer, a net.connect
// upstream per client, and pipe() both ways. The certificate is $BENCH_TLS_DIR/cert.pem, key.pem.
//   node node-tls-proxy.js <upstreamPort>      (fd 3: listening TCP socket)
'use strict'
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const tls = require('node:tls')

const upstreamPort = Number(process.argv[2])
const dir = process.env.BENCH_TLS_DIR

const server = tls.createServer({ cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) }, (client) => {
  client.setNoDelay(true)
  const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true })
  client.pipe(upstream).pipe(client)
  const end = () => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', end).on('close', end)
  upstream.on('error', end).on('close', end)
})
server.on('tlsClientError', () => {})
server.listen({ fd: 3 })

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
server.on('listening', () => process.stdout.write('ready\n'))
