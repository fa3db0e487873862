// The UDP forwarder rows of `npm run bench` (reactor.listenDatagramProxy), beside what users would
// pick instead. Two workloads, each through every forwarder and straight at the upstream:
//
// - DNS: dnsperf (200 queries in flight, A queries for names dnsmasq answers from --address) →
//   {no forwarder, this package's forwarder (thread, thread: false), a Node dgram forwarder
//   (bench/servers/node-udp-proxy.js), nginx 1.22 stream UDP (`proxy_responses 1`, master + one
//   worker)} → dnsmasq. dnsperf runs under target/release/timed (its CPU: near a full core its row is
//   client-bound); dnsmasq is single-threaded, and at a full core it caps every path alike
//   (upstream-bound). Targets: this package ≥ 0.9× no forwarder and ≥ 1.2× nginx, 0 lost.
// - UDP echo 64 B × 64 in flight (the load generator's `udp` workload) → the Rust echo server,
//   direct and through each forwarder. Target: this package ≥ 0.8× direct.
//
// Paths are interleaved A B C … A B C … over the rounds so the machine's drift hits all alike;
// ratios are taken pair by pair within a round, then their median. "Lost" sums the rounds: dnsperf's
// unanswered queries, or the load generator's echoes missing after 50 ms (late ones count as lost);
// what the forwarder itself dropped (its sockets' SO_MEMINFO drops, sends refused) is shown beside.
//
//   node bench/udp-forwarder.mjs [--rounds 3] [--duration-ms 2000] [--warmup-ms 300] [--only dns,udp-forward] [--verbose]
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, fstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { findTool, inEpollOfTree, NGINX_STREAM_MODULE, tail, terminate, treeCpuSeconds, treePeakRssMiB, waitFor } from './peers.mjs'
import { LOAD_BOUND_SHARE, median } from './rows.mjs'
import { machineBusySeconds } from './servers.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const NAMES = 1000

/** The forwarders (and the direct path) each workload goes through. */
const PATHS = [
  { key: 'direct', name: 'no forwarder' },
  { key: 'thread', name: 'reactor listenDatagramProxy (thread)', script: 'reactor-udp-proxy.js', argv: (up, responses) => ['thread', up, ...responses] },
  { key: 'hosted', name: 'reactor listenDatagramProxy (thread: false)', script: 'reactor-udp-proxy.js', argv: (up, responses) => ['hosted', up, ...responses] },
  { key: 'node', name: 'node dgram forwarder', script: 'node-udp-proxy.js', argv: (up, responses) => [up, ...responses] },
  { key: 'nginx', name: 'nginx 1.22 stream UDP (master + 1 worker)', peer: 'nginx' },
]

export const UDP_FORWARDER_WORKLOADS = [
  { key: 'dns', title: 'DNS: dnsperf, 200 queries in flight → dnsmasq', unit: 'qps', responses: 1, tools: ['dnsperf', 'dnsmasq'] },
  { key: 'udp-forward', title: 'UDP echo 64 B × 64 in flight → Rust echo', unit: 'dgram/s', tools: [] },
]

/** workload → path → [op, target, against]: the ratio of this path's rate to `against`'s. */
const TARGETS = {
  dns: { thread: [['>=', 0.9, 'direct'], ['>=', 1.2, 'nginx']], hosted: [['>=', 0.9, 'direct'], ['>=', 1.2, 'nginx']] },
  'udp-forward': { thread: [['>=', 0.8, 'direct']], hosted: [['>=', 0.8, 'direct']] },
}

function tool(name) {
  return findTool(name) ?? (existsSync(`/usr/sbin/${name}`) ? `/usr/sbin/${name}` : null)
}

/** Why `p` cannot run for workload `w` here, or null. */
function whyNot(w, p) {
  for (const t of w.tools) if (!tool(t)) return `${t} not installed`
  if (p.peer === 'nginx') {
    if (!tool('nginx')) return 'nginx not installed'
    if (!existsSync(NGINX_STREAM_MODULE)) return 'libnginx-mod-stream not installed'
  }
  return null
}

// ---- upstreams --------------------------------------------------------------------------------

/** dnsmasq on 127.0.0.1 answering *.example.test from --address (no cache needed, no upstream). */
async function startDnsmasq(dir, sockets) {
  let lastError
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freeDnsPort(sockets)
    const child = spawn(tool('dnsmasq'), [
      '--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts',
      '--conf-file=/dev/null', `--pid-file=${dir}/dnsmasq.pid`, '--address=/example.test/192.0.2.1', '--log-facility=/dev/null',
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    const said = tail(child.stderr)
    try {
      await waitFor(() => udpBound(port), { child, what: 'dnsmasq' })
      return { child, port, stop: () => terminate(child) }
    } catch (err) {
      lastError = new Error(`${err.message}: ${said()}`)
      await terminate(child)
    }
  }
  throw lastError
}

/** The Rust echo server (TCP on fd 3, UDP on fd 4). */
async function startEcho(sockets) {
  const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const udp = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
  const port = sockets.info(udp).local.port
  const child = spawn(path.join(root, 'target/release/echo-server'), ['--tcp-fd', '3', '--udp-fd', '4'], { stdio: ['ignore', 'ignore', 'inherit', tcp, udp] })
  sockets.close(tcp)
  sockets.close(udp)
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  return { child, port, stop: () => terminate(child) }
}

/** A port free on 127.0.0.1 for both TCP and UDP now (dnsmasq takes both). */
function freeDnsPort(sockets) {
  for (;;) {
    const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
    const port = sockets.info(tcp).local.port
    try {
      sockets.close(sockets.bindUdp({ host: '127.0.0.1', port }))
      return port
    } catch {
      // its UDP side is taken: another
    } finally {
      sockets.close(tcp)
    }
  }
}

/** Whether a UDP socket is bound to 127.0.0.1:`port` (/proc/net/udp). */
function udpBound(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  try {
    return spawnSync('cat', ['/proc/net/udp'], { encoding: 'utf8' }).stdout.includes(`0100007F:${hex}`)
  } catch {
    return false
  }
}

// ---- forwarders -------------------------------------------------------------------------------

/**
 * Starts forwarder `p` on a fresh UDP socket (inherited as fd 3) to 127.0.0.1:`upstreamPort`.
 * Resolves with { child, port, stop(), figures() } once it serves.
 */
async function startForwarder(p, sockets, upstreamPort, responses, dir) {
  const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0, recvBufferSize: 4 << 20 })
  const port = sockets.info(fd).local.port
  const ino = fstatSync(fd).ino
  let child
  if (p.peer === 'nginx') {
    const conf = path.join(dir, 'nginx-udp.conf')
    writeFileSync(
      conf,
      `load_module ${NGINX_STREAM_MODULE};
master_process on;
worker_processes 1;
daemon off;
pid ${path.join(dir, 'nginx-udp.pid')};
error_log stderr warn;
events {
    worker_connections 8192;
}
stream {
    server {
        listen 127.0.0.1:${port} udp;
        proxy_pass 127.0.0.1:${upstreamPort};
        ${responses ? `proxy_responses ${responses};` : ''}
        proxy_timeout 10s;
    }
}
`,
    )
    child = spawn(tool('nginx'), ['-c', conf, '-p', dir + '/', '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe', fd], env: { ...process.env, NGINX: '3;' } })
    sockets.close(fd)
    const said = tail(child.stderr)
    await waitFor(() => inEpollOfTree(child.pid, ino), { child, what: 'nginx' }).catch(async (err) => {
      await terminate(child)
      throw new Error(`${err.message}: ${said()}`)
    })
    return { child, port, stop: () => terminate(child), figures: () => null }
  }
  const script = path.join(root, 'bench/servers', p.script)
  child = spawn(process.execPath, [script, ...p.argv(String(upstreamPort), responses ? [String(responses)] : [])], { stdio: ['pipe', 'pipe', 'inherit', fd] })
  sockets.close(fd)
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => (out += d))
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${p.name} did not start`)), 10_000)
    child.stdout.once('data', () => (clearTimeout(timer), resolve()))
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${p.name} exited (${code})`))))
  })
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      child.once('exit', () => (clearTimeout(timer), resolve()))
      child.stdin.end()
    })
  const figures = () => {
    const line = out.split('\n').findLast((l) => l.startsWith('proxy '))
    return line ? JSON.parse(line.slice(6)) : null
  }
  return { child, port, stop, figures }
}

// ---- clients ----------------------------------------------------------------------------------

/** dnsperf at 127.0.0.1:`port` for `seconds`, under `timed`; its figures and CPU. */
function dnsperf(port, queryFile, seconds) {
  const timed = path.join(root, 'target/release/timed')
  const run = spawnSync(timed, ['--timeout-ms', String(seconds * 1000 + 20_000), tool('dnsperf'), '-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-q', '200', '-l', String(seconds)], {
    encoding: 'utf8',
    timeout: seconds * 1000 + 30_000,
  })
  const outText = run.stdout ?? ''
  const timedLine = outText.split('\n').findLast((l) => l.startsWith('timed '))
  if (!timedLine) throw new Error(`dnsperf did not run: ${run.error?.message ?? run.stderr}`)
  const t = JSON.parse(timedLine.slice(6))
  const num = (re) => Number(re.exec(outText)?.[1] ?? NaN)
  const completed = num(/Queries completed:\s+(\d+)/)
  const r = { qps: num(/Queries per second:\s+([\d.]+)/), sent: num(/Queries sent:\s+(\d+)/), completed, lost: num(/Queries lost:\s+(\d+)/), clientShare: t.cpu_share, seconds: num(/Run time \(s\):\s+([\d.]+)/) }
  if (!Number.isFinite(r.qps)) throw new Error(`dnsperf printed no rate: ${(run.stderr || outText).trim().split('\n').slice(-3).join(' / ')}`)
  return r
}

/** The load generator's udp workload at 127.0.0.1:`port`. */
function loadgenUdp(port, durationMs, warmupMs) {
  const run = spawnSync(path.join(root, 'target/release/loadgen'), ['udp', '--size', '64', '--inflight', '64', '--addr', `127.0.0.1:${port}`, '--duration-ms', String(durationMs), '--warmup-ms', String(warmupMs)], {
    encoding: 'utf8',
    timeout: durationMs + warmupMs + 15_000,
  })
  try {
    const j = JSON.parse(run.stdout.trim().split('\n').pop())
    return { qps: j.rate, sent: j.ops, completed: j.ops, lost: j.lost ?? 0, clientShare: j.cpu_share, seconds: j.seconds }
  } catch {
    throw new Error(`loadgen failed: ${(run.stderr || String(run.error)).trim().split('\n').slice(-2).join(' / ')}`)
  }
}

// ---- the run ----------------------------------------------------------------------------------

/** One measurement of workload `w` through path `p`. */
async function measure(w, p, { sockets, upstream, dir, queryFile, durationMs, warmupMs, verbose }) {
  const forwarder = p.key === 'direct' ? null : await startForwarder(p, sockets, upstream.port, w.responses, dir)
  const port = forwarder?.port ?? upstream.port
  try {
    const seconds = durationMs / 1000
    if (w.key === 'dns' && warmupMs > 0) dnsperf(port, queryFile, warmupMs / 1000)
    const cpu0 = forwarder ? treeCpuSeconds(forwarder.child.pid) : 0
    const up0 = treeCpuSeconds(upstream.child.pid)
    const busy0 = machineBusySeconds()
    const t0 = process.hrtime.bigint()
    const r = w.key === 'dns' ? dnsperf(port, queryFile, seconds) : loadgenUdp(port, durationMs, warmupMs)
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = forwarder ? treeCpuSeconds(forwarder.child.pid) - cpu0 : NaN
    const upstreamShare = (treeCpuSeconds(upstream.child.pid) - up0) / wall
    // Cores the rest of the machine kept busy meanwhile (other processes, steal): the noise.
    const otherCores = (machineBusySeconds() - busy0) / wall - (Number.isFinite(cpu) ? cpu / wall : 0) - upstreamShare - r.clientShare
    const rss = forwarder ? treePeakRssMiB(forwarder.child.pid) : NaN
    if (forwarder) await forwarder.stop()
    const figures = forwarder?.figures() ?? null
    const m = { ...r, cpuUsPerOp: ((cpu / wall) / r.qps) * 1e6, upstreamShare, otherCores, rss, figures }
    if (verbose) {
      console.log(`  ${w.key} ${p.name}: ${r.qps.toFixed(0)} ${w.unit}, ${r.lost} lost, forwarder ${Number.isFinite(cpu) ? ((cpu / wall) * 100).toFixed(0) : '–'}% CPU, client ${(r.clientShare * 100).toFixed(0)}%, upstream ${(upstreamShare * 100).toFixed(0)}%${figures?.kernelDrops ? `, kernel drops ${figures.kernelDrops}` : ''}`)
    }
    return m
  } finally {
    if (forwarder) await forwarder.stop()
  }
}

export async function runUdpForwarderBenchmarks({ rounds = 3, durationMs = 2000, warmupMs = 300, only = null, verbose = false } = {}) {
  const { sockets } = createRequire(path.join(root, 'package.json'))(root)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'reactor-udp-bench-'))
  const queryFile = path.join(dir, 'queries.txt')
  writeFileSync(queryFile, Array.from({ length: NAMES }, (_, i) => `host${i}.example.test A\n`).join(''))
  const workloads = UDP_FORWARDER_WORKLOADS.filter((w) => !only || only.has(w.key))
  const samples = {} // workload → path → [m]
  const failures = {}
  const skipped = []
  const opts = { sockets, dir, queryFile, durationMs, warmupMs, verbose }
  try {
    for (const w of workloads) {
      const runnable = PATHS.filter((p) => {
        const why = whyNot(w, p)
        if (why) skipped.push({ workload: w, path: p, why })
        return !why
      })
      if (runnable.length === 0) continue
      const upstream = w.key === 'dns' ? await startDnsmasq(dir, sockets) : await startEcho(sockets)
      try {
        for (let round = 1; round <= rounds; round++) {
          for (const p of runnable) {
            try {
              const m = await measure(w, p, { ...opts, upstream })
              m.round = round
              ;((samples[w.key] ??= {})[p.key] ??= []).push(m)
            } catch (err) {
              console.error(`  ! ${w.key} ${p.name}: ${err.message}`)
              ;((failures[w.key] ??= {})[p.key] ??= []).push(err.message)
            }
          }
        }
      } finally {
        await upstream.stop()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return { workloads, rows: summarize(workloads, samples, failures), skipped, rounds, durationMs }
}

function pairedRatio(runs, baseline, f) {
  if (!baseline) return NaN
  return median(runs.map((r) => {
    const b = baseline.find((x) => x.round === r.round)
    return b ? f(r) / f(b) : NaN
  }))
}

function summarize(workloads, samples, failures) {
  const rows = []
  for (const w of workloads) {
    const byPath = samples[w.key] ?? {}
    for (const p of PATHS) {
      const runs = byPath[p.key]
      if (!runs) {
        const f = failures[w.key]?.[p.key]
        if (f) rows.push({ workload: w, path: p, failed: f[0] })
        continue
      }
      const targets = (TARGETS[w.key]?.[p.key] ?? []).map(([op, target, against]) => {
        const ratio = pairedRatio(runs, byPath[against], (r) => r.qps)
        return { op, target, against, ratio, ok: op === '>=' ? ratio >= target : ratio <= target }
      })
      rows.push({
        workload: w,
        path: p,
        median: median(runs.map((r) => r.qps)),
        min: Math.min(...runs.map((r) => r.qps)),
        max: Math.max(...runs.map((r) => r.qps)),
        lost: runs.reduce((a, r) => a + (r.lost || 0), 0),
        toDirect: pairedRatio(runs, byPath.direct, (r) => r.qps),
        toNginx: pairedRatio(runs, byPath.nginx, (r) => r.qps),
        cpuUsPerOp: median(runs.map((r) => r.cpuUsPerOp)),
        clientShare: median(runs.map((r) => r.clientShare)),
        upstreamShare: median(runs.map((r) => r.upstreamShare)),
        otherCores: median(runs.map((r) => r.otherCores)),
        rss: median(runs.map((r) => r.rss)),
        // What the forwarder itself lost (its sockets' kernel drops, sends refused), all rounds.
        kernelDrops: runs.reduce((a, r) => a + (r.figures?.kernelDrops ?? 0) + (r.figures?.upstreamKernelDrops ?? 0) + (r.figures?.datagramsDropped ?? 0), 0),
        targets,
      })
    }
  }
  return rows
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–')

/** The Markdown table of `runUdpForwarderBenchmarks`' result. */
export function udpForwarderReport({ rows, skipped, rounds, durationMs }) {
  const lines = []
  lines.push(`UDP forwarders (\`bench/udp-forwarder.mjs\`, part of \`npm run bench\`; ${rounds} round${rounds === 1 ? '' : 's'}, ${durationMs} ms per run, paths interleaved; ratios paired within a round):`)
  lines.push('')
  lines.push('| workload | path | median | min–max | lost | × no forwarder | × nginx | target | forwarder CPU | client CPU | upstream CPU | other load (cores) | peak RSS MiB |')
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows) {
    if (r.failed) {
      lines.push(`| ${r.workload.title} | ${r.path.name} | failed: ${r.failed.replaceAll('|', '/').slice(0, 160)} |${' |'.repeat(10)}`)
      continue
    }
    const bound = r.clientShare > LOAD_BOUND_SHARE ? ' ⚠ client-bound' : ''
    const upBound = r.upstreamShare > LOAD_BOUND_SHARE ? ' ⚠ upstream-bound' : ''
    const target = r.targets.map((t) => `${t.ok ? '✓' : '✗'} (${t.op === '>=' ? '≥' : '≤'} ${t.target}× ${t.against === 'direct' ? 'no forwarder' : t.against})`).join('; ')
    const lostCell = `${fmt(r.lost)}${r.kernelDrops ? ` (${fmt(r.kernelDrops)} by the forwarder)` : ''}`
    lines.push(
      `| ${r.workload.title} | ${r.path.name} | ${fmt(r.median)} ${r.workload.unit} | ${fmt(r.min)}–${fmt(r.max)} | ${lostCell} | ${r.path.key === 'direct' ? '1.00' : fmt(r.toDirect, 2)} | ${r.path.key === 'nginx' ? '1.00' : fmt(r.toNginx, 2)} | ${target} | ${r.path.key === 'direct' ? '–' : `${fmt(r.cpuUsPerOp, 2)} µs/op`} | ${fmt(r.clientShare * 100)}%${bound} | ${fmt(r.upstreamShare * 100)}%${upBound} | ${fmt(r.otherCores, 2)} | ${fmt(r.rss, 1)} |`,
    )
  }
  for (const s of skipped) lines.push(`| ${s.workload.title} | ${s.path.name} | skipped: ${s.why} |${' |'.repeat(10)}`)
  return lines.join('\n') + '\n'
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = {}
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) if (argv[i].startsWith('--')) args[argv[i].slice(2)] = argv[i + 1]?.startsWith('--') || argv[i + 1] === undefined ? true : argv[++i]
  const result = await runUdpForwarderBenchmarks({
    rounds: Number(args.rounds ?? 3),
    durationMs: Number(args['duration-ms'] ?? 2000),
    warmupMs: Number(args['warmup-ms'] ?? 300),
    only: args.only ? new Set(String(args.only).split(',')) : null,
    verbose: Boolean(args.verbose),
  })
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0].model}, Linux ${os.release()}, Node ${process.version}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log(udpForwarderReport(result))
}
