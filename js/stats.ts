// What `reactor.stats()` returns: the core's counters, each kept at O(1) per event. The shape is
// the core's (`for_each_stat!` in crates/core/src/wire/stats.rs); the binding generates its type
// (`ReactorStats` in native/binding.d.ts, field docs included), which is this one.
import { binding, type NativeReactor, type NativeStats as ReactorStats } from './native'

export type { ReactorStats }

/** The figures of a reactor whose core never started (all zero). */
export function noStats(): ReactorStats {
  return binding.noStats()
}

export function statsOf(native: NativeReactor): ReactorStats {
  return native.stats()
}
