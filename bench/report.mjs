// Formats the benchmark results as Markdown, with the targets of the performance issues.
import { writeFileSync } from 'node:fs'
import * as os from 'node:os'
import { LOAD_BOUND_SHARE, median } from './rows.mjs'
import { udpForwarderReport } from './udp-forwarder.mjs'

/** workload key → server key → [op, target] on the ratio to Node in the same round. */
const TARGETS = {
  'udp-64': { thread: ['>=', 3.5], hosted: ['>=', 4.5] },
  'pingpong-32': { thread: ['>=', 2.2], hosted: ['>=', 2.5] },
  'pingpong-1': { thread: ['<=', 1.1], hosted: ['<=', 0.9] },
  stream: { thread: ['>=', 1.2], hosted: ['>=', 1.3] },
  connect: { thread: ['>=', 1.8], hosted: ['>=', 1.9] },
  proxy: { 'relay-thread': ['>=', 1.8], 'relay-hosted': ['>=', 1.8] },
  'proxy-connect': { 'relay-thread': ['>=', 1.5], 'relay-hosted': ['>=', 1.5] },
  http: { 'http-thread': ['>=', 0.9], 'http-hosted': ['>=', 0.9] },
  'tls-proxy': { 'tls-listen-thread': ['>=', 2], 'tls-listen-hosted': ['>=', 2] },
  'tls-proxy-connect': { 'tls-listen-thread': ['>=', 1.2], 'tls-listen-hosted': ['>=', 1.2] },
}
/** Server CPU as an absolute figure (issue "TLS in the core"): at most this, per GB (streamed) or
 *  per operation (µs). */
const ABS_CPU_TARGETS = {
  'tls-proxy': { 'tls-listen-thread': 1.1, 'tls-listen-hosted': 1.1 },
  'tls-proxy-connect': { 'tls-listen-thread': 456, 'tls-listen-hosted': 456 },
}
/** Server CPU per operation (per GB where streamed), as a ratio to Node's: at most this. */
const CPU_TARGETS = { stream: { thread: 0.8, hosted: 0.7 }, proxy: { 'relay-thread': 0.5, 'relay-hosted': 0.5 } }
/** Rate as a ratio to the Rust limit with no JS in the same round: at least this. */
const LIMIT_TARGETS = { proxy: { 'relay-thread': 0.9, 'relay-hosted': 0.9 } }
/** Server CPU per operation as a ratio to the C epoll server's in the same round: at most this. */
const C_CPU_TARGETS = { 'pingpong-32': { thread: 1.2, hosted: 1.2 }, connect: { thread: 1.2, hosted: 1.2 } }
/** The native proxy port against the peers users would pick instead (issue "A native proxy
 *  port"): rate over HAProxy's at least `haproxy`, rate over the Rust splice proxy's at least
 *  `rust`, CPU per operation over nginx's at most `nginxCpu`. */
const PEER_TARGETS = {
  'proxy-connect': { 'listen-thread': { haproxy: 1.1, nginxCpu: 1 }, 'listen-hosted': { haproxy: 1.1, nginxCpu: 1 } },
  proxy: { 'listen-thread': { haproxy: 1.3, rust: 0.95 }, 'listen-hosted': { haproxy: 1.3, rust: 0.95 } },
  'tls-proxy': { 'tls-listen-thread': { haproxy: 1 }, 'tls-listen-hosted': { haproxy: 1 } },
}
/** Peak RSS of this package's servers as a ratio to Node's: at most this. */
const RSS_TARGET = 1.1
const OURS = new Set(['thread', 'hosted', 'relay-thread', 'relay-hosted', 'listen-thread', 'listen-hosted', 'http-thread', 'http-hosted', 'tls-listen-thread', 'tls-listen-hosted'])

/** Kept with the table whenever BENCHMARKS.md is rewritten. */
const NOTES = `
## Reading these figures

- **Load generator CPU** is the single-threaded load generator's own user + system time over the
  measured window, as a share of one core. Above ${LOAD_BOUND_SHARE * 100}% it, not the server, may be what limits the
  rate: such a row (or any row whose Node baseline is so) shows **load-bound** instead of a rate
  ratio, and the figure that counts is the server's CPU per operation with its ratio to Node's
  (a target of ≥ X× Node's rate becomes ≤ 1/X of Node's CPU per operation).
- The load generator batches: datagrams go out with \`sendmmsg\` and come back with \`recvmmsg\`
  (up to 64 per syscall), or with \`--gso\` as one \`UDP_SEGMENT\` buffer per batch; streams write
  a whole window with one \`writev\`. It checks every byte it gets back.
- Server CPU is the server process's user + system time (all threads) over the whole load
  generator run, spread over the operations at the measured rate.
- **Other load** is what the rest of the machine kept busy during the run (other processes and,
  on a VM, steal time), in cores, from \`/proc/stat\`: the noise each figure competed with. A
  load generator starved by it cannot reach ${LOAD_BOUND_SHARE * 100}% of a core, so under heavy other load a low
  load generator CPU does not prove the server was the limit.
- The machine is a shared 2-core VM: the load generator, the server's JS thread and (in the default
  mode) its I/O thread compete for two cores, and neighbours add noise (see the min–max columns).
  Ratios are taken pair by pair within a round, which cancels most of the drift; absolute rates
  move by up to 2× between runs.
- The Rust servers without JS (a mio echo server; a \`splice(2)\` proxy) bound what any server can
  show here. Proxy rows relay to one Rust echo server shared by the whole run; the proxy's CPU is
  the proxy process only.
- **Events per batch** and **wake-ups/s** come from each of this package's servers: it prints
  \`reactor.stats()\` when the harness ends its stdin, counted over its whole life (it is idle
  outside the load generator's run, warm-up included, which is the time they are divided by). A
  wake-up is one announcement that made the JS thread take batches (a threadsafe-function call from
  the I/O thread; a turn of Node's loop that found a batch, with \`thread: false\` or assisting
  the I/O thread). "By the I/O thread" is the share of wake-ups that cost a thread hop. At the same
  rate, fewer events per batch or more wake-ups per operation than before means batching regressed;
  a server that outpaces the load (a load-bound row) takes small batches because little is waiting.
- **CPU × C** (echo rows) is the server's CPU per operation over that of a plain C epoll echo
  server (\`bench/peers/c-echo.c\`: edge-triggered epoll, \`accept4\`, read until \`EAGAIN\` and write
  back; UDP with \`recvmmsg\`/\`sendmmsg\`) in the same round, then the median: the cost of this
  package over the least any server spends. It is compiled with \`cc -O2\` at bench time.
- **HAProxy** 2.6 (\`mode tcp\`, \`nbthread 1\`, \`option splice-auto\`, \`maxconn 4000\`, on the
  inherited socket with \`bind fd@3\`) and **nginx** 1.22's stream module (master + one worker,
  inherited socket through \`NGINX="3;"\`) are the proxies users would pick instead; their configs
  are written to a temporary folder at run time, and their CPU and RSS are those of the whole
  process tree. A peer tool that is not installed makes its rows say so (skipped), it never fails
  the run.
- **Real clients** (second table): \`redis-benchmark\` (50 clients, \`GET\`, without and with
  \`-P 16\`) against \`redis-server\`, and \`iperf3\` up and down (\`-R\`) against \`iperf3 -s\`,
  straight at the server ("direct") and through each proxy (every proxy forwards every connection,
  so iperf3's control and data connections all reach the iperf3 server). The client's CPU is its
  own process's user + system time over its whole run (\`target/release/timed\`); near a full core
  the row is **client-bound**. The upstream's CPU is shown too: redis-server is single-threaded,
  and at a full core it caps every path alike (**upstream-bound**). These rows have no warm-up
  (the clients' connection set-up is in the figure), run fewer rounds, and redis-benchmark's
  request count is sized from the rate the same path reached before to last about the measured
  duration; iperf3 runs whole seconds.
- **UDP forwarders** (third table, \`bench/udp-forwarder.mjs\`): \`dnsperf\` (200 queries in
  flight, A queries for 1,000 names that dnsmasq answers from \`--address\`) and the load
  generator's UDP echo (64 B, 64 in flight, to the Rust echo server), straight at the upstream
  ("no forwarder") and through this package's \`listenDatagramProxy\` (both modes, \`responses: 1\`
  for DNS), a forwarder on Node's \`dgram\` (a connected socket per session, as ours;
  \`bench/servers/node-udp-proxy.js\`) and nginx's stream module (\`listen … udp\`,
  \`proxy_responses 1\` for DNS, master + one worker, inherited socket). Each path is a fresh
  forwarder process; dnsmasq (single-threaded) and the echo server are shared by the whole run.
  "Lost" is dnsperf's count (queries never answered) or the load generator's; dnsmasq's own socket
  drops a few queries of dnsperf's first burst of 200 on every path, the direct one included
  (its \`/proc/net/udp\` drop counter). Client CPU near a full core marks a row client-bound,
  dnsmasq's upstream-bound.
- **TLS rows** (\`tls-proxy\`, \`tls-proxy-connect\`, \`tls-proxy-resume\`): each proxy terminates TLS
  (an ECDSA P-256 certificate made with openssl at bench time) and relays the plaintext to the
  Rust echo server. The load generator is a rustls client (the core's engine), which verifies the
  certificate; \`tls-proxy-connect\` makes a full handshake per connection (no session cache),
  \`tls-proxy-resume\` resumes (one client session cache). HAProxy (\`bind fd@3 ssl crt\`, one
  thread) and nginx (\`listen ... ssl\`, one worker) use their default TLS settings with OpenSSL;
  this package's proxy runs rustls in userspace (no kTLS on this kernel) and copies through the
  sessions (splice cannot carry TLS). Connect rows are usually load-bound: the single-threaded
  client's own handshake work costs about as much as the server's, so the figure that counts is
  the server CPU per connection.
- Rows of servers that another change adds (the \`reactor.listenProxy\` slot,
  \`bench/servers/reactor-listen-proxy.js\`) say "skipped" with the reason until they can run.
`

const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–')
const sign = (op) => op.replace('>=', '≥').replace('<=', '≤')
const check = (ok) => (ok ? '✓' : '✗')

/** The target cell: on the rate ratio, or, for a load-bound row, on the CPU ratio. */
function targetCell(r) {
  const parts = []
  const t = TARGETS[r.workload.key]?.[r.server.key]
  if (t) {
    const [op, target] = t
    if (!r.loadBound) parts.push(`${check(op === '>=' ? r.ratio >= target : r.ratio <= target)} (${sign(op)} ${target})`)
    else if (op === '>=') parts.push(`${check(r.cpuRatio <= 1 / target)} (CPU ≤ ${fmt(1 / target, 2)})`)
    else parts.push(`– (${sign(op)} ${target}, load-bound)`)
  }
  const limit = LIMIT_TARGETS[r.workload.key]?.[r.server.key]
  if (limit) parts.push(`${check(r.limitRatio >= limit)} (≥ ${limit}× Rust: ${fmt(r.limitRatio, 2)})`)
  const peer = PEER_TARGETS[r.workload.key]?.[r.server.key]
  if (peer?.haproxy) parts.push(Number.isFinite(r.haproxyRatio) ? `${check(r.haproxyRatio >= peer.haproxy)} (≥ ${peer.haproxy}× HAProxy: ${fmt(r.haproxyRatio, 2)})` : `– (≥ ${peer.haproxy}× HAProxy: no HAProxy row)`)
  if (peer?.rust) parts.push(`${check(r.limitRatio >= peer.rust)} (≥ ${peer.rust}× Rust: ${fmt(r.limitRatio, 2)})`)
  if (peer?.nginxCpu) parts.push(Number.isFinite(r.nginxCpuRatio) ? `${check(r.nginxCpuRatio <= peer.nginxCpu)} (CPU ≤ nginx: ${fmt(r.nginxCpuRatio, 2)})` : '– (CPU ≤ nginx: no nginx row)')
  const abs = ABS_CPU_TARGETS[r.workload.key]?.[r.server.key]
  if (abs !== undefined) {
    const value = r.workload.cpuPerGB ? r.cpuSecPerGB : r.cpuUsPerOp
    parts.push(`${check(value <= abs)} (CPU ≤ ${abs} ${r.workload.cpuPerGB ? 's/GB' : 'µs/op'})`)
  }
  const c = C_CPU_TARGETS[r.workload.key]?.[r.server.key]
  if (c) parts.push(Number.isFinite(r.cpuCRatio) ? `${check(r.cpuCRatio <= c)} (CPU ≤ ${c}× C: ${fmt(r.cpuCRatio, 2)})` : `– (CPU ≤ ${c}× C: no C row)`)
  return parts.join('; ')
}

/** The cell of the "CPU × C" column: echo rows only. */
function cCell(r) {
  if (r.workload.role !== 'echo') return ''
  if (r.server.key === 'c') return '1'
  return fmt(r.cpuCRatio, 2)
}

const failedNote = (r) => (r.failedRuns ? ` **${r.failedRuns} run${r.failedRuns > 1 ? 's' : ''} failed: ${r.failed.replaceAll('|', '/').slice(0, 160)}**` : '')

/** A row that did not run: skipped (with why) or failed in every round. */
function emptyRow(w, name, text, columns) {
  return `| ${w.title} | ${name} | ${text} |${' |'.repeat(columns - 3)}`
}

function row(r) {
  const w = r.workload
  const digits = w.unit === 'MB/s' || w.unit === 'µs' ? 1 : 0
  const isNode = r.server.key === 'node'
  const ratio = r.loadBound ? '**load-bound**' : isNode ? '1.00' : fmt(r.ratio, 2)
  const cpu = w.cpuPerGB ? `${fmt(r.cpuSecPerGB, 2)} s/GB` : `${fmt(r.cpuUsPerOp, 1)} µs/op`
  const cpuTarget = CPU_TARGETS[w.key]?.[r.server.key]
  const cpuRatio = isNode ? '1' : `${fmt(r.cpuRatio, 2)}${cpuTarget ? ` ${check(r.cpuRatio <= cpuTarget)} (≤ ${cpuTarget})` : ''}`
  const loadgen = `${fmt(r.loadgenShare * 100)}%${r.loadgenShare > LOAD_BOUND_SHARE ? ' ⚠' : ''}`
  const rssRatio = isNode ? '1' : `${fmt(r.rssRatio, 2)}${OURS.has(r.server.key) ? ` ${check(r.rssRatio <= RSS_TARGET)}` : ''}`
  return (
    `| ${w.title} | ${r.server.name} | ${fmt(r.median, digits)} ${w.unit} | ${fmt(r.min, digits)}–${fmt(r.max, digits)} | ${ratio} | ${targetCell(r)} | ${cpu} | ${cpuRatio} | ${cCell(r)} | ${loadgen} | ${fmt(r.otherCores, 2)} | ${fmt(r.rssMiB, 1)} | ${rssRatio} |` +
    (r.errors ? ` **${r.errors} errors**` : '') +
    failedNote(r)
  )
}

/** A real-client row: the client's CPU in the load generator's place, and the upstream's CPU. */
function clientRow(r) {
  const w = r.workload
  const digits = w.unit === 'MB/s' ? 1 : 0
  const isNode = r.server.key === 'node'
  const ratio = r.loadBound ? '**client-bound**' : r.upstreamBound ? '**upstream-bound**' : isNode ? '1.00' : fmt(r.ratio, 2)
  const cpu = r.server.direct ? '–' : w.cpuPerGB ? `${fmt(r.cpuSecPerGB, 2)} s/GB` : `${fmt(r.cpuUsPerOp, 1)} µs/op`
  const cpuRatio = r.server.direct ? '–' : isNode ? '1' : fmt(r.cpuRatio, 2)
  const client = `${fmt(r.loadgenShare * 100)}%${r.loadgenShare > LOAD_BOUND_SHARE ? ' ⚠' : ''}`
  const upstream = `${fmt(r.upstreamShare * 100)}%${r.upstreamShare > LOAD_BOUND_SHARE ? ' ⚠' : ''}`
  return `| ${w.title} | ${r.server.name} | ${fmt(r.median, digits)} ${w.unit} | ${fmt(r.min, digits)}–${fmt(r.max, digits)} | ${ratio} | ${cpu} | ${cpuRatio} | ${client} | ${upstream} | ${fmt(r.otherCores, 2)} | ${r.server.direct ? '–' : fmt(r.rssMiB, 1)} |` + failedNote(r)
}

/** The table lines of `workloads` in order: each measured row, then the rows that did not run. */
function tableLines(workloads, rows, skipped, format, columns) {
  const out = []
  for (const w of workloads) {
    for (const r of rows.filter((r) => r.workload.key === w.key)) {
      out.push(r.median === undefined ? emptyRow(w, r.server.name, `failed: ${r.failed.replaceAll('|', '/').slice(0, 200)}`, columns) : format(r))
    }
    for (const k of skipped.filter((k) => k.workload.key === w.key)) out.push(emptyRow(w, k.server.name, `skipped: ${k.why}`, columns))
  }
  return out
}

export function writeReport({ workloads, rows, skipped = [], memory, udpForwarders = null, phaseFailures = [], rounds, clientRounds, durationMs, warmupMs, iperfSeconds, seconds, file }) {
  const lines = []
  const main = workloads.filter((w) => !w.client)
  const clients = workloads.filter((w) => w.client)
  lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}.`)
  lines.push(
    `Command: \`npm run bench\` (${rounds} round${rounds === 1 ? '' : 's'}, servers interleaved, ${durationMs} ms measured after ${warmupMs} ms warm-up per run` +
      (clients.length ? `; the real-client rows ${clientRounds} round${clientRounds === 1 ? '' : 's'}, about ${durationMs} ms of redis-benchmark and ${iperfSeconds} s of iperf3 each, no warm-up` : '') +
      `; whole run ${fmt(seconds)} s).`,
  )
  lines.push('Values are medians over the rounds (min–max beside them); ratios are to Node in the same round, then the median.')
  const others = median(rows.map((r) => r.otherCores))
  if (others > 0.25) lines.push(`**Shared machine:** other processes kept a median of ${fmt(others, 2)} of its ${os.cpus().length} cores busy during the runs (column "other load"); every figure here competed with them.`)
  if (main.length) {
    lines.push('')
    lines.push('| workload | server | median | min–max | × Node | target | server CPU | CPU × Node | CPU × C | load gen CPU | other load (cores) | peak RSS MiB | RSS × Node |')
    lines.push('| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    lines.push(...tableLines(main, rows, skipped, row, 13))
  }
  if (clients.length) {
    lines.push('')
    lines.push('Real clients, straight at their server and through each proxy (× Node: to Node `net` + `pipe()` in the same round; proxy CPU per request, or per GB for iperf3):')
    lines.push('')
    lines.push('| workload | path | median | min–max | × Node | proxy CPU | CPU × Node | client CPU | upstream CPU | other load (cores) | peak RSS MiB |')
    lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    lines.push(...tableLines(clients, rows, skipped, clientRow, 11))
  }
  const batching = rows.filter((r) => r.median !== undefined && Number.isFinite(r.eventsPerBatch))
  if (batching.length) {
    lines.push('')
    lines.push("Batching in this package's servers (each server's `reactor.stats()` at exit; medians over the rounds):")
    lines.push('')
    lines.push('| workload | server | events per batch | wake-ups/s | wake-ups per op | by the I/O thread |')
    lines.push('| --- | --- | ---: | ---: | ---: | ---: |')
    for (const r of batching) {
      const byThread = Number.isFinite(r.ioThreadShare) ? `${fmt(r.ioThreadShare * 100)}%` : '–'
      lines.push(`| ${r.workload.title} | ${r.server.name} | ${fmt(r.eventsPerBatch, 1)} | ${fmt(r.wakeupsPerSecond)} | ${fmt(r.wakeupsPerOp, 3)} | ${byThread} |`)
    }
  }
  if (udpForwarders) {
    lines.push('')
    lines.push(udpForwarderReport(udpForwarders).trimEnd())
  }
  for (const failure of phaseFailures) {
    lines.push('')
    lines.push(`**Failed phase** — ${failure} (its rows are missing from this report).`)
  }
  if (memory) {
    lines.push('')
    lines.push('Memory under load (`bench/memory.mjs`, part of `npm run bench`):')
    lines.push('')
    lines.push('| test | server | figure | × Node | target |')
    lines.push('| --- | --- | ---: | ---: | --- |')
    for (const m of memory) lines.push(`| ${m.test} | ${m.server} | ${m.figure} | ${m.ratio ?? ''} | ${m.target ?? ''} |`)
  }
  const text = lines.join('\n') + '\n'
  if (file) {
    const header = '# Benchmarks\n\nThe latest `npm run bench` on the development machine. Re-run it to refresh this table (`npm run bench -- --write BENCHMARKS.md`).\n\n'
    writeFileSync(file, header + text + NOTES)
  }
  return text
}
