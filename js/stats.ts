// What `reactor.stats()` returns: the core's counters, each kept at O(1) per event. The shape is
// the core's (`for_each_stat!` in crates/core/src/wire/stats.rs); the binding generates its type
// (`ReactorStats` in native/binding.d.ts, field docs included), which is this one.
import { binding, type NativeReactor, type NativeStats } from './native'

/** A reactor's figures: totals since its core started, and levels now (see each field). */
export type ReactorStats = NativeStats

/** The figures of a reactor whose core never started (all zero). */
export function noStats(): ReactorStats {
  return binding.noStats()
}

export function statsOf(native: NativeReactor): ReactorStats {
  return native.stats()
}
