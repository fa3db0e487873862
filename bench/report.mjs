// Formats the benchmark results as Markdown, with the targets of the performance issues.
import { writeFileSync } from 'node:fs'
import * as os from 'node:os'
import { LOAD_BOUND_SHARE, median } from './rows.mjs'

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
}
/** Server CPU per operation (per GB where streamed), as a ratio to Node's: at most this. */
const CPU_TARGETS = { stream: { thread: 0.8, hosted: 0.7 }, proxy: { 'relay-thread': 0.5, 'relay-hosted': 0.5 } }
/** Rate as a ratio to the Rust limit with no JS in the same round: at least this. */
const LIMIT_TARGETS = { proxy: { 'relay-thread': 0.9, 'relay-hosted': 0.9 } }
/** Peak RSS of this package's servers as a ratio to Node's: at most this. */
const RSS_TARGET = 1.1
const OURS = new Set(['thread', 'hosted', 'relay-thread', 'relay-hosted', 'http-thread', 'http-hosted'])

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
- Rows of servers that another change adds (\`bench/servers/reactor-proxy.js\`,
  \`bench/servers/reactor-http.js\`) are listed as skipped until their file exists.
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
  return parts.join('; ')
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
    `| ${w.title} | ${r.server.name} | ${fmt(r.median, digits)} ${w.unit} | ${fmt(r.min, digits)}–${fmt(r.max, digits)} | ${ratio} | ${targetCell(r)} | ${cpu} | ${cpuRatio} | ${loadgen} | ${fmt(r.otherCores, 2)} | ${fmt(r.rssMiB, 1)} | ${rssRatio} |` +
    (r.errors ? ` **${r.errors} errors**` : '')
  )
}

export function writeReport({ rows, skipped = [], memory, rounds, durationMs, warmupMs, seconds, file }) {
  const lines = []
  lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}.`)
  lines.push(`Command: \`npm run bench\` (${rounds} rounds, servers interleaved, ${durationMs} ms measured after ${warmupMs} ms warm-up per run; whole run ${fmt(seconds)} s).`)
  lines.push('Values are medians over the rounds (min–max beside them); ratios are to Node in the same round, then the median.')
  const others = median(rows.map((r) => r.otherCores))
  if (others > 0.25) lines.push(`**Shared machine:** other processes kept a median of ${fmt(others, 2)} of its ${os.cpus().length} cores busy during the runs (column "other load"); every figure here competed with them.`)
  lines.push('')
  lines.push('| workload | server | median | min–max | × Node | target | server CPU | CPU × Node | load gen CPU | other load (cores) | peak RSS MiB | RSS × Node |')
  lines.push('| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of rows) lines.push(row(r))
  const batching = rows.filter((r) => Number.isFinite(r.eventsPerBatch))
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
  if (skipped.length) {
    lines.push('')
    for (const { server, why } of skipped) lines.push(`Skipped: ${server.name} — ${why} (its rows appear once the file exists).`)
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
