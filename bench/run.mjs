// `npm run bench`: this package (both modes) against Node's own net/dgram/http and the Rust limits
// with no JS (a mio echo server, a splice(2) proxy), side by side in the same run.
//
// Servers are interleaved A B C D A B C D ... over several rounds so the machine's drift hits all
// alike (see servers.mjs for the catalogue and the two slots for servers another change adds). The
// load generator (crates/loadgen, Rust, single-threaded) checks every byte it gets back and reports
// its own CPU, so that a row where it, not the server, was the limit is flagged as such.
//
//   node bench/run.mjs [--rounds 5] [--duration-ms 1000] [--warmup-ms 200] [--only udp-64,stream]
//                      [--no-memory] [--verbose] [--write BENCHMARKS.md]
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as path from 'node:path'
import * as os from 'node:os'
import { serverCatalogue, missing, startServer, stopServer, cpuSeconds, peakRssMiB, machineBusySeconds } from './servers.mjs'
import { summarize } from './rows.mjs'
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

/** `role` picks the servers (see servers.mjs); `args` are the load generator's. */
const WORKLOADS = [
  { key: 'udp-64', role: 'echo', title: 'UDP echo 64 B, 64 in flight', args: ['udp', '--size', '64', '--inflight', '64'], metric: 'rate', unit: 'dgram/s' },
  { key: 'udp-64-gso', role: 'echo', title: 'UDP echo 64 B, 64 in flight, sent with GSO', args: ['udp', '--size', '64', '--inflight', '64', '--gso'], metric: 'rate', unit: 'dgram/s' },
  { key: 'udp-1200', role: 'echo', title: 'UDP echo 1200 B, 64 in flight', args: ['udp', '--size', '1200', '--inflight', '64'], metric: 'rate', unit: 'dgram/s' },
  { key: 'pingpong-32', role: 'echo', title: 'ping-pong 64 B × 32', args: ['pingpong', '--conns', '32', '--size', '64'], metric: 'rate', unit: 'rt/s' },
  { key: 'pingpong-1', role: 'echo', title: 'ping-pong 64 B × 1 (p50 latency)', args: ['pingpong', '--conns', '1', '--size', '64'], metric: 'p50_us', unit: 'µs', lowerIsBetter: true },
  { key: 'stream', role: 'echo', title: 'TCP echo stream 16 KiB × 16', args: ['stream', '--conns', '16', '--size', '16384'], metric: 'rate', unit: 'MB/s', cpuPerGB: true },
  { key: 'connect', role: 'echo', title: 'connect–echo–close × 32', args: ['connect', '--conns', '32'], metric: 'rate', unit: 'conn/s' },
  { key: 'proxy', role: 'proxy', title: 'proxy 16 KiB × 16 → Rust echo', args: ['proxy', '--conns', '16', '--size', '16384'], metric: 'rate', unit: 'MB/s', cpuPerGB: true },
  { key: 'proxy-connect', role: 'proxy', title: 'proxy connect–echo–close × 32 → Rust echo', args: ['proxy-connect', '--conns', '32'], metric: 'rate', unit: 'conn/s' },
  { key: 'http', role: 'http', title: 'HTTP/1.1 keep-alive GET, 64 B bodies × 32', args: ['http', '--conns', '32', '--size', '64'], metric: 'rate', unit: 'req/s' },
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

/** One load generator run against a fresh server process. */
async function measure(server, workload, upstream) {
  const tStart = Date.now()
  const { child, tcpPort, udpPort, stats } = await startServer(sockets, server, upstream?.tcpPort)
  const startMs = Date.now() - tStart
  const port = workload.args[0] === 'udp' ? udpPort : tcpPort
  const cpu0 = cpuSeconds(child.pid)
  const upstreamCpu0 = upstream ? cpuSeconds(upstream.child.pid) : 0
  const busy0 = machineBusySeconds()
  const t0 = process.hrtime.bigint()
  const run = spawnSync(LOADGEN, [...workload.args, '--addr', `127.0.0.1:${port}`, '--duration-ms', String(DURATION_MS), '--warmup-ms', String(WARMUP_MS)], {
    encoding: 'utf8',
    timeout: DURATION_MS + WARMUP_MS + 15_000,
  })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = cpuSeconds(child.pid) - cpu0
  const upstreamCpu = upstream ? cpuSeconds(upstream.child.pid) - upstreamCpu0 : 0
  const busy = machineBusySeconds() - busy0
  const rss = peakRssMiB(child.pid)
  const tStop = Date.now()
  await stopServer(child)
  const stopMs = Date.now() - tStop
  // Counted over the server's life; it is idle outside the load generator's run.
  const reactorStats = await stats()
  let result
  try {
    result = JSON.parse(run.stdout.trim().split('\n').pop())
  } catch {
    throw new Error(`loadgen failed for ${server.name}/${workload.key}: ${run.stderr || run.error}`)
  }
  if (result.errors > 0 || result.error) console.error(`  ! ${server.name} ${workload.key}: ${result.errors} errors${result.error ? `, ${result.error}` : ''}`)
  // Server CPU over the whole run, spread over the operations at the measured rate.
  const cpuShare = cpu / wall
  const opsPerSecond = result.ops / result.seconds
  const m = {
    value: result[workload.metric],
    errors: result.errors + (result.error ? 1 : 0),
    lost: result.lost ?? 0,
    cpuUsPerOp: result.rate > 0 ? (cpuShare / opsPerSecond) * 1e6 : NaN,
    cpuSecPerGB: workload.cpuPerGB && result.rate > 0 ? cpuShare / (result.rate / 1000) : NaN,
    rssMiB: rss,
    loadgenShare: result.cpu_share ?? NaN,
    // Cores kept busy by everything else on the machine meanwhile (other processes, other
    // guests): the noise this run competed with. The load generator's share in the window
    // stands for its whole run.
    otherCores: (busy - cpu - upstreamCpu - (result.cpu_share ?? 0) * wall) / wall,
    eventsPerBatch: reactorStats?.eventsPerBatch ?? NaN,
    wakeupsPerSecond: reactorStats ? reactorStats.wakeups / wall : NaN,
    wakeupsPerOp: reactorStats && result.ops > 0 ? reactorStats.wakeups / wall / opsPerSecond : NaN,
    // Wake-ups announced by the I/O thread (a hop each), as a share of all: threaded mode only.
    ioThreadShare: reactorStats && reactorStats.wakeups > 0 ? (reactorStats.wakeupsByIoThread ?? NaN) / reactorStats.wakeups : NaN,
  }
  if (args.verbose) {
    console.log(`  ${workload.key} ${server.name}: ${m.value} ${workload.unit}${m.lost ? ` (${m.lost} lost)` : ""}, server ${(cpuShare * 100).toFixed(0)}% CPU, load generator ${(m.loadgenShare * 100).toFixed(0)}%, others ${m.otherCores.toFixed(2)} cores${reactorStats ? `; ${m.eventsPerBatch.toFixed(1)} events/batch, ${m.wakeupsPerSecond.toFixed(0)} wake-ups/s` : ''}; start ${startMs} ms, run ${(wall * 1000).toFixed(0)} ms, stop ${stopMs} ms`)
  }
  return m
}

async function main() {
  const catalogue = serverCatalogue(root)
  for (const bin of [LOADGEN, ...catalogue.filter((s) => s.bin).map((s) => s.bin)]) {
    if (!existsSync(bin)) {
      console.error(`missing ${bin}: run 'cargo build --release -p reactor-loadgen' (npm run bench does)`)
      process.exit(1)
    }
  }
  const only = args.only ? new Set(String(args.only).split(',')) : null
  const workloads = WORKLOADS.filter((w) => !only || only.has(w.key))
  const skipped = [] // { server, why }
  const serversOf = (w) => catalogue.filter((s) => s.role === w.role && !missing(s, root))
  for (const s of catalogue) {
    const why = missing(s, root)
    if (why && workloads.some((w) => w.role === s.role)) skipped.push({ server: s, why })
  }
  const started = Date.now()
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`)
  console.log(`rounds: ${ROUNDS}, ${DURATION_MS} ms measured (+${WARMUP_MS} ms warm-up) per run`)
  for (const { server, why } of skipped) console.log(`skipped: ${server.name} (${why})`)
  console.log('')

  // The proxies' upstream: one Rust echo server for the whole run.
  const rustEcho = catalogue.find((s) => s.role === 'echo' && s.key === 'rust')
  const upstream = workloads.some((w) => w.role === 'proxy') ? await startServer(sockets, rustEcho) : null

  const samples = {} // workload key -> server key -> [measurement]
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const w of workloads) {
        for (const s of serversOf(w)) {
          const m = await measure(s, w, w.role === 'proxy' ? upstream : null)
          ;((samples[w.key] ??= {})[s.key] ??= []).push(m)
        }
      }
      console.log(`round ${round}/${ROUNDS} done (${((Date.now() - started) / 1000).toFixed(0)} s)`)
    }
  } finally {
    if (upstream) await stopServer(upstream.child)
  }

  const rows = summarize(workloads.map((w) => ({ workload: w, servers: serversOf(w) })), samples)
  const memory = args['no-memory'] ? null : await runMemoryBenchmarks({ root })
  const seconds = (Date.now() - started) / 1000
  const report = writeReport({ rows, skipped, memory, rounds: ROUNDS, durationMs: DURATION_MS, warmupMs: WARMUP_MS, seconds, file: args.write ? path.resolve(root, String(args.write)) : null })
  console.log('\n' + report)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
