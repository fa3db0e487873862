// Turns the runs of `npm run bench` into table rows: medians over the rounds, and ratios taken pair
// by pair within a round (so drift between rounds cancels), then their median.

/** A load generator above this share of one core may be what limits the run. */
export const LOAD_BOUND_SHARE = 0.9

export const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Median of the per-round ratios `f(run) / f(baseline run)`. */
function pairedRatio(runs, baseline, f) {
  if (!baseline) return NaN
  return median(runs.map((r, i) => (baseline[i] ? f(r) / f(baseline[i]) : NaN)))
}

/**
 * `plan`: [{ workload, servers }]; `samples[workload.key][server.key]`: the runs, one per round.
 * The baseline of every workload is the server keyed `node`; `rust` is the limit with no JS.
 */
export function summarize(plan, samples) {
  const rows = []
  for (const { workload: w, servers } of plan) {
    const byServer = samples[w.key] ?? {}
    const node = byServer.node
    const limit = byServer.rust
    const loadgenOf = (runs) => median(runs.map((r) => r.loadgenShare))
    const nodeLoadBound = node ? loadgenOf(node) > LOAD_BOUND_SHARE : false
    for (const s of servers) {
      const runs = byServer[s.key]
      if (!runs) continue
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
        rssMiB: median(runs.map((r) => r.rssMiB)),
        rssRatio: pairedRatio(runs, node, (r) => r.rssMiB),
        loadgenShare,
        otherCores: median(runs.map((r) => r.otherCores)),
        // The load generator near a full core (in this row or in Node's) caps the rate: the
        // ratio of rates then says nothing about the servers, their CPU per operation does.
        loadBound: loadgenShare > LOAD_BOUND_SHARE || nodeLoadBound,
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
