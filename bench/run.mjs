// `npm run bench`: this package (both modes) against Node's own net/dgram and a plain Rust mio
// echo server (no JS: the machine's practical limit), side by side in the same run.
//
// Every server gets its sockets as inherited fds from this process, as from a supervisor. Servers
// are interleaved A B C D A B C D ... over several rounds so the machine's drift hits all alike.
// The load generator (crates/bench, Rust, single-threaded) checks every echoed byte.
//
//   node bench/run.mjs [--rounds 5] [--duration-ms 1000] [--only udp-64,stream] [--no-memory] [--write BENCHMARKS.md]
import { spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { readFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as path from 'node:path'
import * as os from 'node:os'
import { writeReport } from './report.mjs'
import { runMemoryBenchmarks } from './memory.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const { sockets } = require(root)

const args = parseArgs(process.argv.slice(2))
const ROUNDS = Number(args.rounds ?? 5)
const DURATION_MS = Number(args['duration-ms'] ?? 1000)
const WARMUP_MS = Number(args['warmup-ms'] ?? 200)
const LOADGEN = path.join(root, 'target/release/loadgen')
const ECHO = path.join(root, 'target/release/echo-server')
const CLK_TCK = 100

const SERVERS = [
  { name: 'reactor (thread)', key: 'thread', cmd: (role, up) => [process.execPath, [path.join(root, 'bench/servers/reactor-server.js'), 'thread', role, up]] },
  { name: 'reactor (thread: false)', key: 'hosted', cmd: (role, up) => [process.execPath, [path.join(root, 'bench/servers/reactor-server.js'), 'hosted', role, up]] },
  { name: 'node net/dgram', key: 'node', cmd: (role, up) => [process.execPath, [path.join(root, 'bench/servers/node-server.js'), role, up]] },
  // Serves from the moment it runs: its sockets already listen, so there is no "ready" to wait for.
  { name: 'rust mio, no JS', key: 'rust', silent: true, cmd: () => [ECHO, ['--tcp-fd', '3', '--udp-fd', '4']] },
]

const WORKLOADS = [
  { key: 'udp-64', title: 'UDP echo 64 B, 64 in flight', args: ['udp', '--size', '64', '--inflight', '64'], metric: 'rate', unit: 'dgram/s' },
  { key: 'udp-1200', title: 'UDP echo 1200 B, 64 in flight', args: ['udp', '--size', '1200', '--inflight', '64'], metric: 'rate', unit: 'dgram/s' },
  { key: 'pingpong-32', title: 'ping-pong 64 B × 32', args: ['pingpong', '--conns', '32', '--size', '64'], metric: 'rate', unit: 'rt/s' },
  { key: 'pingpong-1', title: 'ping-pong 64 B × 1 (p50 latency)', args: ['pingpong', '--conns', '1', '--size', '64'], metric: 'p50_us', unit: 'µs', lowerIsBetter: true },
  { key: 'stream', title: 'TCP echo stream 16 KiB × 16', args: ['stream', '--conns', '16', '--size', '16384'], metric: 'rate', unit: 'MB/s', cpuPerGB: true },
  { key: 'connect', title: 'connect–echo–close × 32', args: ['connect', '--conns', '32'], metric: 'rate', unit: 'conn/s' },
  { key: 'proxy', title: 'proxy 16 KiB × 16 → Rust echo', args: ['stream', '--conns', '16', '--size', '16384'], metric: 'rate', unit: 'MB/s', proxy: true, cpuPerGB: true },
]

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) continue
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true
    else out[a.slice(2)] = argv[++i]
  }
  return out
}

function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK // utime + stime, all threads
  } catch {
    return NaN
  }
}

function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

/** Starts a server on fresh inherited sockets; resolves once it printed "ready". */
function startServer(server, role, upstreamPort) {
  const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 1024 })
  const udp = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
  const tcpPort = sockets.info(tcp).local.port
  const udpPort = sockets.info(udp).local.port
  const [cmd, argv] = server.cmd(role, String(upstreamPort ?? ''))
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit', tcp, udp] })
  sockets.close(tcp)
  sockets.close(udp)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${server.name} did not start`)), 10_000)
    const ready = () => {
      clearTimeout(timer)
      resolve({ child, tcpPort, udpPort })
    }
    if (server.silent) child.once('spawn', ready)
    else child.stdout.once('data', ready)
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

async function measure(server, workload, upstreamPort) {
  const { child, tcpPort, udpPort } = await startServer(server, workload.proxy ? 'proxy' : 'echo', upstreamPort)
  const port = workload.args[0] === 'udp' ? udpPort : tcpPort
  const cpu0 = cpuSeconds(child.pid)
  const t0 = process.hrtime.bigint()
  const run = spawnSync(LOADGEN, [...workload.args, '--addr', `127.0.0.1:${port}`, '--duration-ms', String(DURATION_MS), '--warmup-ms', String(WARMUP_MS)], {
    encoding: 'utf8',
    timeout: DURATION_MS + WARMUP_MS + 15_000,
  })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = cpuSeconds(child.pid) - cpu0
  const rss = peakRssMiB(child.pid)
  await stopServer(child)
  let result
  try {
    result = JSON.parse(run.stdout.trim().split('\n').pop())
  } catch {
    throw new Error(`loadgen failed for ${server.name}/${workload.key}: ${run.stderr || run.error}`)
  }
  if (result.errors > 0) console.error(`  ! ${server.name} ${workload.key}: ${result.errors} verification errors`)
  // Server CPU over the whole run, spread over the operations at the measured rate.
  const cpuShare = cpu / wall
  const perOp = result.rate > 0 ? (cpuShare / opsPerSecond(result)) * 1e6 : NaN
  const perGB = workload.cpuPerGB && result.rate > 0 ? cpuShare / (result.rate / 1000) : NaN
  return { value: result[workload.metric], errors: result.errors, lost: result.lost ?? 0, cpuUsPerOp: perOp, cpuSecPerGB: perGB, rssMiB: rss }
}

function opsPerSecond(result) {
  return result.ops / result.seconds
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function main() {
  for (const bin of [LOADGEN, ECHO]) {
    if (!existsSync(bin)) {
      console.error(`missing ${bin}: run 'cargo build --release -p reactor-bench' (npm run bench does)`)
      process.exit(1)
    }
  }
  const only = args.only ? new Set(String(args.only).split(',')) : null
  const workloads = WORKLOADS.filter((w) => !only || only.has(w.key))
  const started = Date.now()
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`)
  console.log(`rounds: ${ROUNDS}, ${DURATION_MS} ms measured (+${WARMUP_MS} ms warm-up) per run\n`)

  // The proxy's upstream: one Rust echo server for the whole run.
  const upstream = workloads.some((w) => w.proxy) ? await startServer(SERVERS[3], 'echo') : null

  const samples = {} // workload -> server -> [measurement]
  for (let round = 1; round <= ROUNDS; round++) {
    for (const w of workloads) {
      for (const s of SERVERS) {
        if (w.proxy && s.key === 'rust') continue
        const m = await measure(s, w, upstream?.tcpPort)
        ;((samples[w.key] ??= {})[s.key] ??= []).push(m)
      }
    }
    console.log(`round ${round}/${ROUNDS} done (${((Date.now() - started) / 1000).toFixed(0)} s)`)
  }
  if (upstream) await stopServer(upstream.child)

  const rows = []
  for (const w of workloads) {
    const nodeRuns = samples[w.key].node
    for (const s of SERVERS) {
      const runs = samples[w.key][s.key]
      if (!runs) continue
      // Ratios pair by pair (same round), so drift between rounds cancels.
      const ratios = runs.map((r, i) => (w.lowerIsBetter ? r.value / nodeRuns[i].value : r.value / nodeRuns[i].value))
      const values = runs.map((r) => r.value)
      rows.push({
        workload: w,
        server: s,
        median: median(values),
        min: Math.min(...values),
        max: Math.max(...values),
        ratio: median(ratios),
        cpuUsPerOp: median(runs.map((r) => r.cpuUsPerOp)),
        cpuSecPerGB: median(runs.map((r) => r.cpuSecPerGB)),
        cpuRatio: median(runs.map((r, i) => (w.cpuPerGB ? r.cpuSecPerGB / nodeRuns[i].cpuSecPerGB : r.cpuUsPerOp / nodeRuns[i].cpuUsPerOp))),
        rssMiB: median(runs.map((r) => r.rssMiB)),
        rssRatio: median(runs.map((r, i) => r.rssMiB / nodeRuns[i].rssMiB)),
        errors: runs.reduce((a, r) => a + r.errors, 0),
      })
    }
  }
  const memory = args['no-memory'] ? null : await runMemoryBenchmarks({ root })
  const seconds = (Date.now() - started) / 1000
  const report = writeReport({ rows, memory, rounds: ROUNDS, durationMs: DURATION_MS, warmupMs: WARMUP_MS, seconds, file: args.write ? path.resolve(root, String(args.write)) : null })
  console.log('\n' + report)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
