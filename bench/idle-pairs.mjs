// Idle proxied pairs: the RSS a proxy process grows by per client/upstream pair held open (each pair
// echoed once, then idle), this package's listenProxy (both modes) against HAProxy (1 thread).
//   node bench/idle-pairs.mjs <haproxy|hosted|thread> [pairs=4000]
// 4,000 by default: with the fd limit of 20,000 here the client, the upstream and HAProxy (about
// 2.5 fds per connection) all fit.
import net from 'node:net'
import fs from 'node:fs'
import { spawn } from 'node:child_process'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'idle-pairs-'))
const [kind, N] = [process.argv[2], Number(process.argv[3] ?? 4000)]
const rss = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1])
const echo = net.createServer((s) => s.pipe(s)).listen(17401, '127.0.0.1')
await new Promise((r) => echo.once('listening', r))
let proc
if (kind === 'haproxy') {
  fs.writeFileSync(path.join(tmp, 'haproxy.cfg'), `global\n  nbthread 1\n  maxconn 4500\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\nfrontend f\n  bind 127.0.0.1:17402\n  default_backend b\nbackend b\n  server s 127.0.0.1:17401\n`)
  proc = spawn('haproxy', ['-db', '-f', path.join(tmp, 'haproxy.cfg')], { stdio: 'ignore' })
} else {
  fs.writeFileSync(path.join(tmp, 'proxy.cjs'), `const { Reactor, AddressFamily, sockets } = require(${JSON.stringify(root)})\nconst r = new Reactor({ thread: ${kind === 'thread'} })\nconst fd = sockets.listenTcp({ host: '127.0.0.1', port: 17402, backlog: 4096 })\nr.listenProxy(fd, AddressFamily.INET, { upstream: { host: '127.0.0.1', port: 17401 } })\nsockets.close(fd)\nsetInterval(() => {}, 1000)\n`)
  proc = spawn(process.execPath, [path.join(tmp, 'proxy.cjs')], { stdio: 'ignore' })
}
for (let i = 0; ; i++) {
  const ok = await new Promise((r) => { const c = net.connect(17402, '127.0.0.1'); c.on('error', () => {}); c.once('connect', () => { c.destroy(); r(true) }); c.once('error', () => r(false)) })
  if (ok) break
  await new Promise((r) => setTimeout(r, 50))
}
await new Promise((r) => setTimeout(r, 300))
const before = rss(proc.pid)
const clients = []
for (let i = 0; i < N; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, N - i) }, () => new Promise((res, rej) => {
    const c = net.connect(17402, '127.0.0.1', () => c.write('x'))
    c.once('data', () => res()); c.on('error', () => {}); clients.push(c)
  })))
}
await new Promise((r) => setTimeout(r, 500))
const after = rss(proc.pid)
console.log(JSON.stringify({ kind, pairs: N, rssBeforeKiB: before, rssAfterKiB: after, perPairKiB: +((after - before) / N).toFixed(2) }))
for (const c of clients) c.destroy()
proc.kill('SIGKILL'); echo.close(); fs.rmSync(tmp, { recursive: true, force: true }); process.exit(0)
