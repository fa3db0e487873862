// Turns the runs of `npm run bench` into table rows: medians over the rounds, and ratios taken pair
// by pair within a round (so drift between rounds cancels), then their median.

/** A load generator above this share of one core may be what limits the run. */
export const LOAD_BOUND_SHARE = 0.9

export const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Median of the per-round ratios `f(run) / f(baseline run of the same round)`. */
function pairedRatio(runs, baseline, f) {
  if (!baseline) return NaN
  return median(
    runs.map((r, i) => {
      // Runs carry their round (a failed run leaves a gap); without one, pair by position.
      const b = r.round === undefined ? baseline[i] : baseline.find((x) => x.round === r.round)
      return b ? f(r) / f(b) : NaN
    }),
  )
}

/**
 * `plan`: [{ workload, servers }]; `samples[workload.key][server.key]`: the runs, one per round;
 * `failures[workload.key][server.key]`: messages of runs that failed. The baseline of every
 * workload is the server keyed `node`; `rust` is the limit with no JS, and `c` (echo rows) the C
 * epoll server that the "CPU × C" column divides by.
 */
export function summarize(plan, samples, failures = {}) {
  const rows = []
  for (const { workload: w, servers } of plan) {
    const byServer = samples[w.key] ?? {}
    const failed = failures[w.key] ?? {}
    const node = byServer.node
    const limit = byServer.rust
    const c = byServer.c
    const haproxy = byServer.haproxy
    const nginx = byServer.nginx
    const loadgenOf = (runs) => median(runs.map((r) => r.loadgenShare))
    const nodeLoadBound = node ? loadgenOf(node) > LOAD_BOUND_SHARE : false
    for (const s of servers) {
      const runs = byServer[s.key]
      const fails = failed[s.key] ?? []
      if (!runs) {
        if (fails.length) rows.push({ workload: w, server: s, failed: fails[0], failedRuns: fails.length })
        continue
      }
      const values = runs.map((r) => r.value)
      const cpuOf = (r) => (w.cpuPerGB ? r.cpuSecPerGB : r.cpuUsPerOp)
      const loadgenShare = loadgenOf(runs)
      rows.push({
        workload: w,
        server: s,
        median: median(values),
        min: Math.min(...values),
        max: Math.max(...values),
        ratio: pairedRatio(runs, node, (r) => r.value),
        limitRatio: pairedRatio(runs, limit, (r) => r.value),
        cpuUsPerOp: median(runs.map((r) => r.cpuUsPerOp)),
        cpuSecPerGB: median(runs.map((r) => r.cpuSecPerGB)),
        cpuRatio: pairedRatio(runs, node, cpuOf),
        // Server CPU per operation over the C epoll server's in the same round (echo rows).
        cpuCRatio: pairedRatio(runs, c, cpuOf),
        // Proxy rows: the rate over HAProxy's, the CPU per operation over nginx's, same round.
        haproxyRatio: pairedRatio(runs, haproxy, (r) => r.value),
        nginxCpuRatio: pairedRatio(runs, nginx, cpuOf),
        // Real-client rows: the share of a core their upstream (redis-server, iperf3 -s) used.
        upstreamShare: median(runs.map((r) => r.upstreamShare)),
        failedRuns: fails.length,
        failed: fails[0],
        rssMiB: median(runs.map((r) => r.rssMiB)),
        rssRatio: pairedRatio(runs, node, (r) => r.rssMiB),
        loadgenShare,
        otherCores: median(runs.map((r) => r.otherCores)),
        // The load generator near a full core (in this row or in Node's) caps the rate: the
        // ratio of rates then says nothing about the servers, their CPU per operation does.
        // (For the real-client rows the client's own CPU stands for the load generator's.)
        loadBound: loadgenShare > LOAD_BOUND_SHARE || nodeLoadBound,
        // A single-threaded upstream (redis-server) at a full core caps every path alike.
        upstreamBound: median(runs.map((r) => r.upstreamShare)) > LOAD_BOUND_SHARE || (node ? median(node.map((r) => r.upstreamShare)) > LOAD_BOUND_SHARE : false),
        errors: runs.reduce((a, r) => a + r.errors, 0),
        // From the server's reactor.stats() (this package's servers only; NaN for the others).
        eventsPerBatch: median(runs.map((r) => r.eventsPerBatch)),
        wakeupsPerSecond: median(runs.map((r) => r.wakeupsPerSecond)),
        wakeupsPerOp: median(runs.map((r) => r.wakeupsPerOp)),
        ioThreadShare: median(runs.map((r) => r.ioThreadShare)),
      })
    }
  }
  return rows
}
