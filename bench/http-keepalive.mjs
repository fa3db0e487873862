// HTTP keep-alive, small responses: Node's http.Server over this package's SocketStreams (both
// reactor modes, bench/servers/reactor-http.js) against Node's http.Server on net
// (bench/servers/node-http.js), side by side, interleaved over several rounds.
//
// Each server inherits a listening socket as fd 3, as in bench/run.mjs. The load generator is a lean
// HTTP/1.1 client over raw net sockets in this process (one request in flight per connection; every
// response's status line and Content-Length are checked); it reports requests/s and the server's CPU
// per request (from /proc).
//
//   node bench/http-keepalive.mjs [--conns 32] [--rounds 5] [--duration-ms 2000] [--warmup-ms 300]
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { sockets } = createRequire(import.meta.url)(root)

const args = Object.fromEntries(
  process.argv.slice(2).flatMap((a, i, all) => (a.startsWith('--') ? [[a.slice(2), all[i + 1]]] : [])),
)
const CONNS = Number(args.conns ?? 32)
const ROUNDS = Number(args.rounds ?? 5)
const DURATION_MS = Number(args['duration-ms'] ?? 2000)
const WARMUP_MS = Number(args['warmup-ms'] ?? 300)
const CLK_TCK = 100

const SERVERS = [
  { name: 'reactor (thread) + SocketStream', file: 'reactor-http.js', argv: ['thread'] },
  { name: 'reactor (thread: false) + SocketStream', file: 'reactor-http.js', argv: ['hosted'] },
  { name: 'node http on net', file: 'node-http.js', argv: [] },
]

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n')
const HEADER_END = Buffer.from('\r\n\r\n')

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

function startServer(server) {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 1024 })
  const port = sockets.info(fd).local.port
  const child = spawn(process.execPath, [path.join(root, 'bench/servers', server.file), ...server.argv], {
    stdio: ['pipe', 'pipe', 'inherit', fd],
  })
  sockets.close(fd)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${server.name} did not start`)), 10_000)
    child.stdout.once('data', () => {
      clearTimeout(timer)
      resolve({ child, port })
    })
    child.once('exit', (code) => reject(new Error(`${server.name} exited early (${code})`)))
  })
}

function stopServer(child) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.stdin.end()
  })
}

/** One keep-alive connection sending a request each time the previous response is complete. */
class Client {
  constructor(port, stats) {
    this.stats = stats
    this.pending = null
    this.sock = net.connect({ port, host: '127.0.0.1', noDelay: true })
    this.sock.on('data', (d) => this.onData(d))
    this.sock.on('error', () => stats.errors++)
    this.ready = new Promise((resolve) => this.sock.once('connect', resolve))
  }

  send() {
    this.sock.write(REQUEST)
  }

  onData(data) {
    let buf = this.pending === null ? data : Buffer.concat([this.pending, data])
    for (;;) {
      const end = buf.indexOf(HEADER_END)
      if (end < 0) break
      const head = buf.latin1Slice(0, end)
      const m = /\r\ncontent-length: *(\d+)/i.exec(head)
      if (!head.startsWith('HTTP/1.1 200') || m === null) {
        this.stats.errors++
        this.sock.destroy()
        return
      }
      const total = end + 4 + Number(m[1])
      if (buf.length < total) break
      buf = buf.subarray(total)
      this.stats.responses++
      if (this.stats.running) this.send()
    }
    this.pending = buf.length > 0 ? buf : null
  }
}

async function measure(server) {
  const { child, port } = await startServer(server)
  const stats = { responses: 0, errors: 0, running: true }
  const clients = Array.from({ length: CONNS }, () => new Client(port, stats))
  await Promise.all(clients.map((c) => c.ready))
  clients.forEach((c) => c.send())
  await new Promise((r) => setTimeout(r, WARMUP_MS))
  const r0 = stats.responses
  const cpu0 = cpuSeconds(child.pid)
  const t0 = process.hrtime.bigint()
  await new Promise((r) => setTimeout(r, DURATION_MS))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const responses = stats.responses - r0
  const cpu = cpuSeconds(child.pid) - cpu0
  stats.running = false
  clients.forEach((c) => c.sock.destroy())
  await stopServer(child)
  return { rate: responses / seconds, cpuUsPerReq: (cpu / responses) * 1e6, errors: stats.errors }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

console.log(`machine: ${os.cpus().length} × ${os.cpus()[0].model}, Linux ${os.release()}, Node ${process.version}`)
console.log(`HTTP keep-alive, small responses, ${CONNS} connections; ${ROUNDS} rounds × ${DURATION_MS} ms (+${WARMUP_MS} ms warm-up)\n`)
const results = new Map(SERVERS.map((s) => [s.name, []]))
for (let round = 1; round <= ROUNDS; round++) {
  for (const server of SERVERS) {
    const res = await measure(server)
    results.get(server.name).push(res)
    console.log(`  round ${round} ${server.name}: ${Math.round(res.rate)} req/s, ${res.cpuUsPerReq.toFixed(1)} µs CPU/req${res.errors ? `, ${res.errors} errors` : ''}`)
  }
}
// Ratios are taken round by round (each server against Node in the same round), then the median:
// a shared machine's load drifts between rounds, less within one.
const nodeRuns = results.get('node http on net')
console.log('\nmedian over rounds (ratio: per round, against Node in the same round):')
for (const [name, runs] of results) {
  const rate = median(runs.map((r) => r.rate))
  const ratio = median(runs.map((r, i) => r.rate / nodeRuns[i].rate))
  const cpu = median(runs.map((r) => r.cpuUsPerReq))
  const cpuRatio = median(runs.map((r, i) => r.cpuUsPerReq / nodeRuns[i].cpuUsPerReq))
  console.log(
    `  ${name.padEnd(40)} ${String(Math.round(rate)).padStart(7)} req/s  ${ratio.toFixed(2)}× node   ${cpu.toFixed(1)} µs CPU/req  ${cpuRatio.toFixed(2)}× node`,
  )
}
