// Real clients beside the load generator: redis-benchmark and iperf3, run straight at their server
// and through each proxy. Each runs under target/release/timed (crates/loadgen), which reports the
// client's own CPU time the way the load generator reports its own: a client near one full core
// marks its row client-bound.
import { spawnSync } from 'node:child_process'
import { findTool } from './peers.mjs'

/** The real-client workloads. `client` runs the tool; `upstream` names what the proxies relay to. */
export const CLIENT_WORKLOADS = [
  {
    key: 'redis-get',
    title: 'redis GET, 50 clients',
    upstream: 'redis',
    tool: 'redis-benchmark',
    metric: 'rate',
    unit: 'req/s',
    // First guess at the rate (requests are sized to last about the measured duration; later
    // rounds use the rate the same server reached before).
    guess: 40_000,
    args: (port, n) => ['-h', '127.0.0.1', '-p', String(port), '-c', '50', '-n', String(n), '-t', 'get', '--csv'],
  },
  {
    key: 'redis-get-p16',
    title: 'redis GET, pipeline 16',
    upstream: 'redis',
    tool: 'redis-benchmark',
    metric: 'rate',
    unit: 'req/s',
    guess: 250_000,
    args: (port, n) => ['-h', '127.0.0.1', '-p', String(port), '-c', '50', '-n', String(n), '-t', 'get', '-P', '16', '--csv'],
  },
  {
    key: 'iperf3-up',
    title: 'iperf3 up',
    upstream: 'iperf3',
    tool: 'iperf3',
    metric: 'rate',
    unit: 'MB/s',
    cpuPerGB: true,
    args: (port, _n, seconds) => ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'],
  },
  {
    key: 'iperf3-down',
    title: 'iperf3 down (-R)',
    upstream: 'iperf3',
    tool: 'iperf3',
    metric: 'rate',
    unit: 'MB/s',
    cpuPerGB: true,
    args: (port, _n, seconds) => ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J', '-R'],
  },
]

/** The proxies (server keys of role `proxy`) the real clients go through, after `direct`. */
export const CLIENT_PATHS = ['direct', 'node', 'haproxy', 'nginx', 'rust', 'relay-thread', 'relay-hosted', 'listen-thread', 'listen-hosted']

/** Why workload `w` cannot run here (its client or upstream is not installed), or null. */
export function clientMissing(w) {
  for (const tool of w.upstream === 'redis' ? ['redis-benchmark', 'redis-server'] : ['iperf3']) {
    if (!findTool(tool)) return `${tool} not installed`
  }
  return null
}

/** Requests for a redis run of about `seconds`, from the last rate seen (or the guess). */
export function requestsFor(w, lastRate, seconds) {
  const rate = Number.isFinite(lastRate) && lastRate > 0 ? lastRate : w.guess
  return Math.max(5_000, Math.min(5_000_000, Math.round((rate * seconds) / 1000) * 1000))
}

/**
 * Runs `w`'s client against 127.0.0.1:`port` under `timed`. Returns { value, ops, bytes, seconds,
 * clientCpu, clientShare, clientWall, p50Ms } or throws with the client's own words.
 */
export function runClient(w, { timed, port, n, seconds }) {
  const tool = findTool(w.tool)
  const timeoutMs = Math.max(30_000, seconds * 1000 * 10)
  const run = spawnSync(timed, ['--timeout-ms', String(timeoutMs), tool, ...w.args(port, n, seconds)], {
    encoding: 'utf8',
    timeout: timeoutMs + 10_000,
    maxBuffer: 64 << 20,
  })
  const lines = (run.stdout ?? '').trimEnd().split('\n')
  const timedLine = lines.findLast((l) => l.startsWith('timed '))
  if (!timedLine) throw new Error(`${w.tool} did not run: ${run.error?.message ?? run.stderr}`)
  const t = JSON.parse(timedLine.slice('timed '.length))
  const out = lines.filter((l) => !l.startsWith('timed ')).join('\n')
  const said = () => (run.stderr || out).trim().split('\n').slice(-3).join(' / ').slice(0, 300)
  if (t.timed_out) throw new Error(`${w.tool} killed after ${timeoutMs} ms: ${said()}`)
  const base = { clientCpu: t.cpu_s, clientShare: t.cpu_share, clientWall: t.wall_s }
  if (w.tool === 'redis-benchmark') {
    // --csv: a header line, then "GET","<rps>","<avg ms>","<min>","<p50>","<p95>","<p99>","<max>"
    const row = out.split('\n').find((l) => l.startsWith('"GET"'))
    if (t.status !== 0 || !row) throw new Error(`redis-benchmark (exit ${t.status}): ${said()}`)
    const f = row.split(',').map((x) => Number(x.replaceAll('"', '')))
    const rps = f[1]
    return { ...base, value: rps, ops: n, bytes: NaN, seconds: n / rps, p50Ms: f[4] }
  }
  let j
  try {
    j = JSON.parse(out)
  } catch {
    throw new Error(`iperf3 (exit ${t.status}) printed no JSON: ${said()}`)
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`)
  const recv = j.end?.sum_received
  if (!recv || !(recv.bytes > 0)) throw new Error(`iperf3 (exit ${t.status}): no bytes received`)
  return { ...base, value: recv.bytes / recv.seconds / 1e6, ops: NaN, bytes: recv.bytes, seconds: recv.seconds, p50Ms: NaN }
}
