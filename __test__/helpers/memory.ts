// Memory of this process, for tests that bound what a flood or a slow consumer may cost.

export const MiB = 1024 * 1024
export const rss = () => process.memoryUsage.rss()

/** Samples RSS every `ms` until stopped; keeps the maximum. */
export function rssSampler(ms = 25) {
  let max = rss()
  const sample = () => {
    const v = rss()
    if (v > max) max = v
  }
  const timer = setInterval(sample, ms)
  return {
    sample,
    get max() {
      return max
    },
    stop() {
      clearInterval(timer)
      return max
    },
  }
}
