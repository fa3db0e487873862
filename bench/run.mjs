// `npm run bench`: this package (both modes) against Node's own net/dgram/http, the limits with no
// JS (a Rust mio and a C epoll echo server, a splice(2) proxy) and the proxies users would pick
// instead (HAProxy, nginx), side by side in the same run; then real clients (redis-benchmark,
// iperf3) straight at their server and through each proxy.
//
// Servers are interleaved A B C D A B C D ... over several rounds so the machine's drift hits all
// alike (see servers.mjs for the catalogue and the slots for servers another change adds). The
// load generator (crates/loadgen, Rust, single-threaded) checks every byte it gets back and reports
// its own CPU, so that a row where it, not the server, was the limit is flagged as such; the real
// clients run under crates/loadgen's `timed`, which reports theirs.
//
//   node bench/run.mjs [--rounds 5] [--client-rounds 3] [--duration-ms 1000] [--warmup-ms 200]
//                      [--only udp-64,stream,redis-get] [--no-memory] [--verbose] [--write FILE]
//
// Workload keys (for --only): udp-64 udp-64-gso udp-1200 pingpong-32 pingpong-1 stream connect
// proxy proxy-connect http tls-proxy tls-proxy-connect tls-proxy-resume redis-get redis-get-p16
// iperf3-up iperf3-down, and the UDP forwarder rows dns udp-forward (bench/udp-forwarder.mjs). The
// real-client rows (and the forwarder rows) run --client-rounds rounds (default min(3, --rounds)).
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as path from 'node:path'
import * as os from 'node:os'
import { serverCatalogue, missing, startServer, stopServer, cpuSeconds, peakRssMiB, machineBusySeconds } from './servers.mjs'
import { compileCEcho, makeBenchCerts, startIperf3, startRedis } from './peers.mjs'
import { CLIENT_PATHS, CLIENT_WORKLOADS, clientMissing, requestsFor, runClient } from './clients.mjs'
import { summarize } from './rows.mjs'
import { writeReport } from './report.mjs'
import { runMemoryBenchmarks } from './memory.mjs'
import { runUdpForwarderBenchmarks, UDP_FORWARDER_WORKLOADS } from './udp-forwarder.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const { sockets } = require(root)

const args = parseArgs(process.argv.slice(2))
const ROUNDS = Number(args.rounds ?? 5)
const DURATION_MS = Number(args['duration-ms'] ?? 1000)
const WARMUP_MS = Number(args['warmup-ms'] ?? 200)
const CLIENT_ROUNDS = Number(args['client-rounds'] ?? Math.min(3, ROUNDS))
const LOADGEN = path.join(root, 'target/release/loadgen')
const TIMED = path.join(root, 'target/release/timed')
/** iperf3 takes whole seconds. */
const IPERF_SECONDS = Math.max(1, Math.round(DURATION_MS / 1000))

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
  // TLS-terminating proxies (role tls-proxy): the load generator is a rustls client (the core's
  // engine), verifying the server's certificate against the bench CA.
  { key: 'tls-proxy', role: 'tls-proxy', title: 'TLS proxy 16 KiB × 16 → Rust echo', args: ['tls-stream', '--conns', '16', '--size', '16384'], metric: 'rate', unit: 'MB/s', cpuPerGB: true, tls: true },
  { key: 'tls-proxy-connect', role: 'tls-proxy', title: 'TLS proxy connect–handshake–echo–close × 32, full handshakes', args: ['tls-connect', '--conns', '32'], metric: 'rate', unit: 'conn/s', tls: true },
  { key: 'tls-proxy-resume', role: 'tls-proxy', title: 'TLS proxy connect–handshake–echo–close × 32, resumed', args: ['tls-connect', '--conns', '32', '--resume'], metric: 'rate', unit: 'conn/s', tls: true },
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
async function measure(server, workload, upstream, dir) {
  const tStart = Date.now()
  const started = await startServer(sockets, server, upstream?.tcpPort, { dir })
  const { child, tcpPort, udpPort, stats } = started
  const startMs = Date.now() - tStart
  const port = workload.args[0] === 'udp' ? udpPort : tcpPort
  const cpu0 = cpuSeconds(child.pid)
  const upstreamCpu0 = upstream ? cpuSeconds(upstream.child.pid) : 0
  const busy0 = machineBusySeconds()
  const t0 = process.hrtime.bigint()
  const tlsArgs = workload.tls ? ['--ca', path.join(process.env.BENCH_TLS_DIR, 'ca.pem'), '--server-name', 'localhost'] : []
  const run = spawnSync(LOADGEN, [...workload.args, ...tlsArgs, '--addr', `127.0.0.1:${port}`, '--duration-ms', String(DURATION_MS), '--warmup-ms', String(WARMUP_MS)], {
    encoding: 'utf8',
    timeout: DURATION_MS + WARMUP_MS + 15_000,
  })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = cpuSeconds(child.pid) - cpu0
  const upstreamCpu = upstream ? cpuSeconds(upstream.child.pid) - upstreamCpu0 : 0
  const busy = machineBusySeconds() - busy0
  const rss = peakRssMiB(child.pid)
  const tStop = Date.now()
  await stopServer(started)
  const stopMs = Date.now() - tStop
  // Counted over the server's life; it is idle outside the load generator's run.
  const reactorStats = await stats()
  let result
  try {
    result = JSON.parse(run.stdout.trim().split('\n').pop())
  } catch {
    throw new Error(`loadgen failed: ${(run.stderr || String(run.error)).trim().split('\n').slice(-2).join(' / ')}`)
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

/**
 * One real-client run (redis-benchmark, iperf3) against a fresh proxy process, or straight at the
 * upstream (`direct`). The proxy's CPU is over the client's whole run (it is idle otherwise),
 * spread over the requests (redis) or the bytes (iperf3).
 */
async function measureClient(server, workload, upstream, dir, lastRate) {
  const tStart = Date.now()
  const started = server.direct
    ? null
    : await startServer(sockets, server, upstream.port, { dir }).catch((err) => {
        err.upstreamUntouched = true // the proxy did not start: the upstream saw nothing
        throw err
      })
  const startMs = Date.now() - tStart
  const port = started ? started.tcpPort : upstream.port
  const pid = started?.child.pid
  const cpu0 = pid ? cpuSeconds(pid) : 0
  const upstreamCpu0 = cpuSeconds(upstream.child.pid)
  const busy0 = machineBusySeconds()
  const t0 = process.hrtime.bigint()
  let r, failure
  try {
    const n = requestsFor(workload, lastRate, DURATION_MS / 1000)
    r = runClient(workload, { timed: TIMED, port, n, seconds: IPERF_SECONDS })
  } catch (err) {
    failure = err
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = pid ? cpuSeconds(pid) - cpu0 : NaN
  const upstreamCpu = cpuSeconds(upstream.child.pid) - upstreamCpu0
  const busy = machineBusySeconds() - busy0
  const rss = pid ? peakRssMiB(pid) : NaN
  if (started) await stopServer(started)
  if (failure) throw failure
  const reactorStats = started ? await started.stats() : null
  const m = {
    value: r.value,
    errors: 0,
    lost: 0,
    cpuUsPerOp: (cpu / r.ops) * 1e6,
    cpuSecPerGB: workload.cpuPerGB ? cpu / (r.bytes / 1e9) : NaN,
    rssMiB: rss,
    loadgenShare: r.clientShare,
    upstreamShare: upstreamCpu / wall,
    otherCores: (busy - (Number.isFinite(cpu) ? cpu : 0) - upstreamCpu - r.clientCpu) / wall,
    eventsPerBatch: reactorStats?.eventsPerBatch ?? NaN,
    wakeupsPerSecond: reactorStats ? reactorStats.wakeups / wall : NaN,
    wakeupsPerOp: reactorStats && r.ops > 0 ? reactorStats.wakeups / r.ops : NaN,
    ioThreadShare: reactorStats && reactorStats.wakeups > 0 ? (reactorStats.wakeupsByIoThread ?? NaN) / reactorStats.wakeups : NaN,
  }
  if (args.verbose) {
    console.log(`  ${workload.key} ${server.name}: ${m.value.toFixed(1)} ${workload.unit}, proxy ${Number.isFinite(cpu) ? ((cpu / wall) * 100).toFixed(0) : '–'}% CPU, client ${(m.loadgenShare * 100).toFixed(0)}%, upstream ${(m.upstreamShare * 100).toFixed(0)}%, others ${m.otherCores.toFixed(2)} cores; start ${startMs} ms, run ${(wall * 1000).toFixed(0)} ms`)
  }
  return m
}

/** The upstream a workload's proxies relay to, started once and restarted when it died. */
function upstreams(catalogue, dir) {
  const running = {}
  const start = {
    echo: async () => {
      const s = await startServer(sockets, catalogue.find((s) => s.role === 'echo' && s.key === 'rust'))
      return { child: s.child, port: s.tcpPort, tcpPort: s.tcpPort, stop: () => stopServer(s) }
    },
    redis: () => startRedis(sockets, dir),
    iperf3: () => startIperf3(sockets),
  }
  return {
    async get(kind) {
      const u = running[kind]
      if (u && u.child.exitCode === null && u.child.signalCode === null) return u
      return (running[kind] = await start[kind]())
    },
    /** After a failed run: a fresh upstream next time (an iperf3 server may be stuck in a test). */
    async reset(kind) {
      const u = running[kind]
      delete running[kind]
      if (u) await u.stop()
    },
    async stopAll() {
      for (const kind of Object.keys(running)) await this.reset(kind)
    },
  }
}

async function main() {
  const catalogue = serverCatalogue(root)
  for (const bin of [LOADGEN, TIMED, ...catalogue.filter((s) => s.bin && !s.compiled).map((s) => s.bin)]) {
    if (!existsSync(bin)) {
      console.error(`missing ${bin}: run 'cargo build --release -p reactor-loadgen' (npm run bench does)`)
      process.exit(1)
    }
  }
  const only = args.only ? new Set(String(args.only).split(',')) : null
  const known = new Set([...WORKLOADS, ...CLIENT_WORKLOADS, ...UDP_FORWARDER_WORKLOADS].map((w) => w.key))
  for (const key of only ?? []) {
    if (!known.has(key)) {
      console.error(`unknown workload '${key}'; known: ${[...known].join(', ')}`)
      process.exit(2)
    }
  }
  const workloads = [
    ...WORKLOADS.filter((w) => !only || only.has(w.key)).map((w) => ({ ...w, rounds: ROUNDS })),
    ...CLIENT_WORKLOADS.filter((w) => !only || only.has(w.key)).map((w) => ({ ...w, role: 'client', client: true, rounds: Math.min(ROUNDS, CLIENT_ROUNDS) })),
  ]
  // The C echo server is compiled now (cc -O2), so its rows always match the source.
  if (workloads.some((w) => w.role === 'echo')) {
    const why = compileCEcho(root)
    for (const s of catalogue.filter((s) => s.compiled === 'c-echo')) s.compileError = why
  }
  // The TLS rows' certificates (servers read them from BENCH_TLS_DIR).
  if (workloads.some((w) => w.tls)) {
    const tlsDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'reactor-bench-tls-')), 'tls')
    const why = makeBenchCerts(tlsDir)
    if (why) process.env.BENCH_TLS_MISSING = why
    else process.env.BENCH_TLS_DIR = tlsDir
  }
  const direct = { key: 'direct', role: 'client', name: 'direct, no proxy', direct: true }
  const candidates = (w) => (w.client ? [direct, ...CLIENT_PATHS.slice(1).map((k) => catalogue.find((s) => s.role === 'proxy' && s.key === k)).filter(Boolean)] : catalogue.filter((s) => s.role === w.role))
  const whyNot = (w, s) => (s.direct ? null : missing(s, root))
  const serversOf = (w) => (w.client && clientMissing(w) ? [] : candidates(w).filter((s) => !whyNot(w, s)))
  // Rows that cannot run say why in the table: { workload, server, why }.
  const skipped = []
  for (const w of workloads) {
    const toolMissing = w.client ? clientMissing(w) : null
    // A real client (or its server) not installed: one row for all the paths.
    if (toolMissing) skipped.push({ workload: w, server: { key: 'all', name: 'all paths' }, why: toolMissing })
    else for (const s of candidates(w)) {
      const why = whyNot(w, s)
      if (why) skipped.push({ workload: w, server: s, why })
    }
  }
  const started = Date.now()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'reactor-bench-'))
  const clientRounds = workloads.find((w) => w.client)?.rounds
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`)
  console.log(`rounds: ${ROUNDS}${clientRounds !== undefined && clientRounds !== ROUNDS ? ` (${clientRounds} for the real-client rows)` : ''}, ${DURATION_MS} ms measured (+${WARMUP_MS} ms warm-up) per run`)
  const reasons = new Set()
  for (const { workload, server, why } of skipped) reasons.add(server.key === 'all' ? `${workload.title}: ${why}` : `${server.name}: ${why}`)
  for (const line of reasons) console.log(`skipped: ${line}`)
  console.log('')

  const ups = upstreams(catalogue, dir)
  const samples = {} // workload key -> server key -> [measurement]
  const failures = {} // workload key -> server key -> [message]
  const lastRate = {} // `${workload}/${server}` -> rate, to size the next redis run
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const w of workloads) {
        if (round > w.rounds) continue
        for (const s of serversOf(w)) {
          let m
          try {
            if (w.client) {
              const upstream = await ups.get(w.upstream)
              try {
                m = await measureClient(s, w, upstream, dir, lastRate[`${w.key}/${s.key}`])
              } catch (err) {
                if (!err.upstreamUntouched) await ups.reset(w.upstream)
                throw err
              }
              lastRate[`${w.key}/${s.key}`] = m.value
            } else {
              m = await measure(s, w, w.role === 'proxy' || w.role === 'tls-proxy' ? await ups.get('echo') : null, dir)
            }
          } catch (err) {
            console.error(`  ! ${w.key} ${s.name}: ${err.message}`)
            ;((failures[w.key] ??= {})[s.key] ??= []).push(err.message)
            continue
          }
          m.round = round
          ;((samples[w.key] ??= {})[s.key] ??= []).push(m)
        }
      }
      console.log(`round ${round}/${ROUNDS} done (${((Date.now() - started) / 1000).toFixed(0)} s)`)
    }
  } finally {
    await ups.stopAll()
  }

  const rows = summarize(
    workloads.map((w) => ({ workload: w, servers: serversOf(w) })),
    samples,
    failures,
  )
  rmSync(dir, { recursive: true, force: true })
  const forwarderKeys = new Set(UDP_FORWARDER_WORKLOADS.map((w) => w.key).filter((k) => !only || only.has(k)))
  // A phase that fails is reported (and sets the exit status) without losing the rounds above.
  const phaseFailures = []
  const phase = async (name, run) => {
    try {
      return await run()
    } catch (err) {
      console.error(`  ! ${name}: ${err.stack ?? err}`)
      phaseFailures.push(`${name}: ${err.message ?? err}`)
      return null
    }
  }
  const udpForwarders = forwarderKeys.size === 0 ? null : await phase('UDP forwarders', () => runUdpForwarderBenchmarks({ rounds: CLIENT_ROUNDS, durationMs: DURATION_MS, warmupMs: WARMUP_MS, only: forwarderKeys, verbose: Boolean(args.verbose) }))
  if (process.env.BENCH_TLS_DIR) rmSync(path.dirname(process.env.BENCH_TLS_DIR), { recursive: true, force: true })
  const memory = args['no-memory'] ? null : await phase('memory', () => runMemoryBenchmarks({ root }))
  const seconds = (Date.now() - started) / 1000
  const report = writeReport({ workloads, rows, skipped, memory, udpForwarders, phaseFailures, rounds: ROUNDS, clientRounds, durationMs: DURATION_MS, warmupMs: WARMUP_MS, iperfSeconds: IPERF_SECONDS, seconds, file: args.write ? path.resolve(root, String(args.write)) : null })
  console.log('\n' + report)
  // A server or a phase that failed is reported; the exit status says so too.
  if (Object.keys(failures).length || phaseFailures.length) process.exitCode = 1
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
