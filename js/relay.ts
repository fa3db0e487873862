// reactor.relay(a, b): bytes move both ways between two connections inside the core (copied when
// small, spliced when large) and never reach JS. This side checks the call, hands the core what JS
// still holds for each connection (so that order is kept), and resolves with the byte counts once the
// core reports the end (after both connections' connectionLost). The idle timeout runs in the core.
import { invalidState } from './errors'
import type { ReactorHost, RelayEntry } from './host'
import { encodeProxyHeader, type ProxyHeaderOptions } from './proxy-header'
import { StreamTransport } from './transport'
import { integerArgument, nativeTimeout, optionsArgument, timeoutArgument } from './validate'
import { STATE_CLOSED, STATE_DISCONNECTING, STATE_GONE, STATE_RELAYING, STATE_WRITE_CLOSED, STATE_WRITE_CLOSING } from './wire'

/** `reactor.relay`'s options. */
export interface RelayOptions {
  /** Bytes each direction holds in the core at most before it stops reading its source (default 262144). */
  bufferSize?: number | undefined
  /** Milliseconds with no byte in either direction before both connections are aborted (ETIMEDOUT);
   *  none by default (nor for Infinity, or more than 2^31-1). */
  idleTimeout?: number | undefined
  /** A PROXY protocol header to send to `b` before anything relayed from `a` (HAProxy's
   *  `send-proxy`): the addresses of the client `a` stands for. */
  proxyHeader?: ProxyHeaderOptions | undefined
}

/** What `reactor.relay` resolves with: the bytes relayed each way. */
export interface RelayResult {
  /** Bytes relayed from `a` to `b`. */
  aToB: number
  /** Bytes relayed from `b` to `a`. */
  bToA: number
}

const DEFAULT_BUFFER_SIZE = 262_144
/** The binding takes a u32; a bound past 2 GiB per direction would mean nothing anyway. */
const MAX_BUFFER_SIZE = 0x7fffffff
const NOT_RELAYABLE = STATE_CLOSED | STATE_GONE | STATE_DISCONNECTING | STATE_RELAYING | STATE_WRITE_CLOSING | STATE_WRITE_CLOSED

/** One relay, from the call until the core reports its end. */
export class ActiveRelay implements RelayEntry {
  readonly promise: Promise<RelayResult>
  private resolve!: (r: RelayResult) => void
  private counts: RelayResult = { aToB: 0, bToA: 0 }

  private constructor(
    private readonly host: ReactorHost,
    readonly id: number,
  ) {
    this.promise = new Promise((resolve) => (this.resolve = resolve))
  }

  static start(host: ReactorHost, a: unknown, b: unknown, options: unknown): ActiveRelay {
    const { bufferSize = DEFAULT_BUFFER_SIZE, idleTimeout, proxyHeader } = optionsArgument(options as RelayOptions | undefined, 'relay: options')
    integerArgument(bufferSize, 'relay: options.bufferSize', 1, MAX_BUFFER_SIZE)
    const idle = idleTimeout === undefined ? null : timeoutArgument(idleTimeout, 'relay: options.idleTimeout', { positive: true })
    const header = proxyHeader === undefined ? null : encodeProxyHeader(proxyHeader, 'relay: options.proxyHeader')
    if (!(a instanceof StreamTransport) || !(b instanceof StreamTransport)) throw invalidState('relay: a and b must be stream transports')
    if (a === b) throw invalidState('relay: a and b are the same transport')
    if (host.lookup('connection', a.id) !== a || host.lookup('connection', b.id) !== b) throw invalidState('relay: both transports must belong to this reactor')
    for (const t of [a, b]) {
      // The core's own view: a connection it already closed (its event not yet delivered) is refused.
      if ((t.coreState() & NOT_RELAYABLE) !== 0 || !t.connected) throw invalidState(`relay: transport ${t.id} is not connected, is disconnecting, or is already relaying`)
      if (t.tlsHandshaking) throw invalidState(`relay: transport ${t.id} is in a startTLS handshake`)
    }
    // What JS still holds for each goes first: bytes held while paused, then records of the batch
    // being dispatched that are still ahead (they are taken out of the batch).
    const ahead = host.takeInputAhead([a.id, b.id])
    const heldA = [...(header === null ? [] : [header]), ...a.enterRelay(), ...(ahead.get(a.id) ?? [])]
    const heldB = [...b.enterRelay(), ...(ahead.get(b.id) ?? [])]
    const id = host.native.relay(a.id, b.id, heldA, heldB, bufferSize, idle === null ? undefined : nativeTimeout(idle))
    a.refreshAfterRelay()
    b.refreshAfterRelay()
    const relay = new ActiveRelay(host, id)
    host.register('relay', id, relay)
    return relay
  }

  /** @internal EV_RELAY_ENDED: both connections are closed (their connectionLost ran). */
  onEnded(aToB: number, bToA: number): void {
    this.counts = { aToB, bToA }
    this.finish()
  }

  /** @internal The reactor is closing: resolve with the counts so far. */
  onReactorClose(): void {
    const counts = this.host.native.relayCounts(this.id)
    if (counts !== null && counts !== undefined) this.counts = { aToB: counts[0], bToA: counts[1] }
    this.finish()
  }

  private finish(): void {
    this.host.forget('relay', this.id, this)
    this.resolve(this.counts)
  }
}
