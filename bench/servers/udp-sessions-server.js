// Memory benchmark server: this package's UDP forwarder (listenDatagramProxy, idle timeout
// `idleMs`) on an inherited UDP socket (fd 3). For each line on stdin it prints its RSS (bytes,
// after a GC), its open descriptors and the port's figures as one JSON line.
//   node --expose-gc udp-sessions-server.js <thread|hosted> <upstreamPort> <idleMs>
'use strict'
const fs = require('node:fs')
const { Reactor, AddressFamily } = require('../..')

const [mode, upstreamPort, idleMs] = process.argv.slice(2)
const reactor = new Reactor({ thread: mode !== 'hosted' })
const port = reactor.listenDatagramProxy(3, AddressFamily.INET, { upstream: { host: '127.0.0.1', port: Number(upstreamPort) }, idleTimeout: Number(idleMs) })
fs.closeSync(3)

function report() {
  global.gc?.()
  const fds = fs.readdirSync('/proc/self/fd').length
  const { heapUsed, external } = process.memoryUsage()
  const rssAnon = Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
  process.stdout.write(JSON.stringify({ rss: process.memoryUsage.rss(), rssAnon, heapUsed, external, fds, stats: port.stats() }) + '\n')
}
report()
let buf = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (d) => {
  buf += d
  while (buf.includes('\n')) {
    buf = buf.slice(buf.indexOf('\n') + 1)
    report()
  }
})
process.stdin.on('end', () => reactor.close().then(() => process.exit(0)))
