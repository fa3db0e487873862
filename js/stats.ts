// What `reactor.stats()` returns: the core's counters (crates/core/src/stats.rs), each kept at O(1)
// per event. Totals count since the reactor's core started; levels say what holds now.
import type { NativeReactor } from './native'

export interface ReactorStats {
  /** Connections accepted by listening ports. */
  connectionsAccepted: number
  /** Stream connections open now (accepted, adopted, connecting or connected). */
  connectionsOpen: number
  /** Bytes received on stream connections and delivered to protocols. */
  bytesIn: number
  /** Bytes of stream writes the kernel took. */
  bytesOut: number
  /** Bytes written to stream connections and still queued in the core, all connections together. */
  bytesQueued: number
  datagramsIn: number
  /** Datagrams the kernel took from sends. */
  datagramsOut: number
  /** Datagrams lost: sends that found no room in the kernel, plus `datagramsDroppedByKernel`. */
  datagramsDropped: number
  /** Datagrams the kernel dropped at this reactor's datagram ports since their adoption (a full
   *  receive queue, or cut off a coalesced UDP_GRO buffer). */
  datagramsDroppedByKernel: number
  /** Batches of events handed to JS. */
  batches: number
  /** Events in those batches. */
  events: number
  /** `events / batches` (0 before the first batch). */
  eventsPerBatch: number
  /** Times the JS thread was woken to take batches: threadsafe-function calls from the I/O thread,
   *  and turns of Node's loop (watching the core's poller) that found a batch. */
  wakeups: number
  /** Of `wakeups`, those the I/O thread announced (threaded mode: a hop between threads each); the
   *  rest were turns of Node's own loop (always, with `thread: false`). */
  wakeupsByIoThread: number
  /** Native relays running now. */
  relaysActive: number
  /** Bytes moved by native relays, both directions. */
  bytesRelayed: number
  /** TLS sessions whose handshake completed and whose records this process encrypts and decrypts
   *  (rustls, in the core). */
  tlsSessionsUserspace: number
  /** TLS sessions handed to the kernel (kTLS). 0 where the kernel has no TLS ULP (`tlsSupport()`). */
  tlsSessionsKtls: number
  /** TLS handshakes that failed (refused, broken, timed out, or the peer left first). */
  tlsHandshakeFailures: number
}

/** The figures of a reactor whose core never started. */
export function noStats(): ReactorStats {
  return {
    connectionsAccepted: 0,
    connectionsOpen: 0,
    bytesIn: 0,
    bytesOut: 0,
    bytesQueued: 0,
    datagramsIn: 0,
    datagramsOut: 0,
    datagramsDropped: 0,
    datagramsDroppedByKernel: 0,
    batches: 0,
    events: 0,
    eventsPerBatch: 0,
    wakeups: 0,
    wakeupsByIoThread: 0,
    relaysActive: 0,
    bytesRelayed: 0,
    tlsSessionsUserspace: 0,
    tlsSessionsKtls: 0,
    tlsHandshakeFailures: 0,
  }
}

/** The native figures, as the public type (the generated type has the same fields). */
export function statsOf(native: NativeReactor): ReactorStats {
  const s: ReactorStats = native.stats()
  return s
}
