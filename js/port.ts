// A listening stream port: accepts connections and builds a protocol for each with its factory.
import type { Address } from './address'
import type { AddressFamily } from './constants'
import { establish } from './establish'
import { Handle, nextTurn } from './handle'
import type { PortEntry, ReactorHost } from './host'
import type { IProtocolFactory } from './interfaces'
import type { NativePortStats } from './native'
import type { ProxyInfo } from './proxy-info'
import { serverContext, type TlsInfo, type TlsServerOptions } from './tls-options'
import { callNative, invalidState } from './errors'
import type { DrainCounts } from './records'
import { optionsArgument, timeoutArgument, TIMER_MAX_MS } from './validate'

/**
 * A listening port's figures (`port.stats()`): totals since its adoption, levels now.
 *
 * @interface
 */
export type PortStats = Omit<NativePortStats, 'upstreamFailures'> & {
  /** Connect failures per upstream, in the order of the port's upstreams. */
  upstreamFailures: number[]
}

/** `port.drain()`'s options. */
export interface DrainOptions {
  /** Connections still open after this many ms are closed (default 30000; Infinity: never). */
  deadline?: number | undefined
  /** A proxied connection with no byte either way for this many ms counts as idle and is closed
   *  when the drain begins (default 1000). */
  idleAfter?: number | undefined
}

const NO_PORT_STATS: NativePortStats = {
  connectionsAccepted: 0,
  connectionsActive: 0,
  refusedPerSource: 0,
  refusedTableFull: 0,
  pausedAtMax: 0,
  pausedForRate: 0,
  proxyHeaderErrors: 0,
  refusedByRoute: 0,
  upstreamConnectFailures: 0,
  upstreamUnavailable: 0,
  sessionsRelayed: 0,
  bytesToUpstream: 0,
  bytesFromUpstream: 0,
  bytesSpliced: 0,
  tlsHandshakeFailures: 0,
  upstreamFailures: [],
}

/**
 * A port's drain (ListeningPort, ProxyPort): started once, in the core (stops accepting, closes
 * idle connections, the rest at the deadline); every `drain()` call gets the same promise of the
 * counts, which `finish` settles once the core reported the end and the port's stop is done.
 */
export class PortDrain {
  private counts: Promise<DrainCounts> | null = null
  private settle: (counts: DrainCounts) => void = () => {}

  start(host: ReactorHost, id: number, live: boolean, options: unknown): Promise<DrainCounts> {
    if (this.counts !== null) return this.counts
    if (!live) return (this.counts = Promise.resolve({ ended: 0, idleClosed: 0, closedAtDeadline: 0 }))
    const { deadline = 30_000, idleAfter = 1000 } = optionsArgument(options as DrainOptions | undefined, 'drain: options')
    const deadlineMs = timeoutArgument(deadline, 'drain: options.deadline')
    const idleMs = timeoutArgument(idleAfter, 'drain: options.idleAfter')
    // "No deadline" goes to the core as the longest a deadline can be (about 24.8 days).
    host.native.drain(id, Math.ceil(deadlineMs ?? TIMER_MAX_MS), Math.ceil(idleMs ?? TIMER_MAX_MS))
    return (this.counts = new Promise((resolve) => (this.settle = resolve)))
  }

  /** EV_PORT_DRAINED: the counts, given once `stopped` (the port's own stop) has resolved. */
  finish(stopped: Promise<void>, counts: DrainCounts): void {
    void stopped.then(() => this.settle(counts))
  }
}

/** `setSecureContext` of a listening or proxy port. */
export function setPortSecureContext(host: ReactorHost, id: number, live: boolean, options: unknown): void {
  const context = serverContext(options, 'setSecureContext: options')
  if (!live) throw invalidState('setSecureContext: the port is closed')
  try {
    callNative(() => host.native.setPortTls(id, context))
  } catch (err) {
    if ((err as { code?: string }).code === 'EINVAL') throw invalidState('setSecureContext: the port was made without tls')
    throw err
  }
}

/** The last figures of a port (kept after it closes, so that stats() still answers). */
export function portStats(host: ReactorHost, id: number, last: PortStats | null): PortStats {
  const s = host.native.portStats(id)
  return s === null || s === undefined ? (last ?? { ...NO_PORT_STATS }) : s
}

/** A listening stream port, as `adoptStreamPort` returns it; `A` is the class of its address
 *  (`getHost()`), by its family: `adoptStreamPort(fd, AddressFamily.INET, f)` gives a
 *  `ListeningPort<IPv4Address>`. */
export class ListeningPort<A extends Address = Address> extends Handle implements PortEntry {
  private stopped: Promise<void> | null = null
  /** After the stop: accepted connections still to be delivered. */
  private toDeliver = 0
  /** @internal Resolves the wait for those connections (also on reactor close). */
  drained: () => void = () => {}
  /** Set when the adopt call is undone: `doStop` must not follow. */
  private abandoned = false
  private readonly draining = new PortDrain()
  private lastStats: PortStats | null = null

  /** @internal Made by the reactor. */
  constructor(
    host: ReactorHost,
    id: number,
    /** The socket's family; accepted connections have the same. */
    readonly family: AddressFamily,
    /** The factory that builds a protocol for each accepted connection. */
    readonly factory: IProtocolFactory,
    /** Decoded once at adoption, so it still answers after the stop. */
    private readonly address: A,
  ) {
    super(host, id, 'port')
    host.register('port', id, this)
  }

  /** The address the port listens on (still answers after the stop). */
  getHost(): A {
    return this.address
  }

  /**
   * Closes the reactor's duplicate now (no shutdown: a caller's fd still listens), then on a later
   * turn runs `factory.doStop()` and resolves. Every call resolves, each on a later turn.
   */
  stopListening(): Promise<void> {
    if (this.stopped !== null) return this.stopped.then(nextTurn)
    let drained: Promise<void> = Promise.resolve()
    if (this.isLive) {
      // Connections the core accepted before the stop still reach the factory ("connections
      // already accepted stay open"); doStop waits for them.
      this.stats() // its last figures, for stats() after the stop
      this.toDeliver = this.host.native.closePort(this.id) + this.host.acceptsAhead(this.id)
      this.detach()
      if (this.toDeliver > 0) {
        this.host.register('draining', this.id, this)
        drained = new Promise((resolve) => (this.drained = resolve))
      }
    }
    this.stopped = Promise.all([nextTurn(), drained]).then(() => this.runDoStop())
    return this.stopped
  }

  /**
   * A new descriptor of the listening socket (close-on-exec), owned by the caller, who must close
   * it: as Go's `Listener.File()`. For a handoff or the systemd fd store when the fd the port was
   * adopted from is closed (the reactor keeps its own duplicate). Also while draining. After
   * stopListening() or the end of a drain → Error with code 'EBADF'; no descriptor left → 'EMFILE'.
   */
  duplicateFd(): number {
    return this.duplicateSocket('duplicateFd')
  }

  /** The port's figures: accepted, active, refused per reason (admission limits, PROXY headers). */
  stats(): PortStats {
    this.lastStats = portStats(this.host, this.id, this.lastStats)
    return this.lastStats
  }

  /**
   * A graceful stop (for a restart): stops accepting at once, lets the connections finish until
   * `options.deadline` ms, then aborts the rest (their protocols get ConnectionLost with code
   * ECONNABORTED). Resolves with the counts once the last connection is gone; the port is then
   * stopped, as after stopListening(). With a handoff, the successor accepts meanwhile.
   */
  drain(options?: DrainOptions): Promise<DrainCounts> {
    return this.draining.start(this.host, this.id, this.isLive, options)
  }

  /**
   * A TLS port's certificates (and other TLS options) replaced without a restart: handshakes from
   * now on use `options`; established connections, and handshakes under way, keep theirs. Bad
   * options throw (ERR_TLS_*) and change nothing; a port without TLS → ERR_INVALID_STATE.
   */
  setSecureContext(options: TlsServerOptions): void {
    setPortSecureContext(this.host, this.id, this.isLive, options)
  }

  /** @internal EV_PORT_DRAINED: the core closed the port after its last connection. */
  onDrainEnded(counts: DrainCounts): void {
    this.stats()
    this.detach()
    this.stopped ??= nextTurn().then(() => this.runDoStop())
    this.draining.finish(this.stopped, counts)
  }

  /** @internal EV_ACCEPT: `id` is the new connection; `peer` decodes its peer's address; `proxy`
   *  the PROXY header it began with. */
  onAccept(id: number, peer: () => Address, proxy: ProxyInfo | null = null, tls: TlsInfo | null = null): void {
    if (!this.isLive && --this.toDeliver <= 0) {
      this.host.forget('draining', this.id, this)
      this.drained()
    }
    let address: Address
    try {
      address = peer()
    } catch (err) {
      this.host.report(err) // reported; that connection is closed, the port keeps accepting
      this.host.closeUnwanted(id)
      return
    }
    establish(this.host, id, this.family, this.factory, address, 'accepted', proxy, null, tls)
  }

  /**
   * @internal Undoes the adoption when `doStart` threw inside the adopt call: closes the duplicate,
   * and no `doStop` follows.
   */
  abandon(): void {
    this.abandoned = true
    if (this.isLive) {
      this.host.native.closePort(this.id)
      this.detach()
    }
  }

  private runDoStop(): void {
    if (this.abandoned || typeof this.factory.doStop !== 'function') return
    try {
      this.factory.doStop()
    } catch (err) {
      this.host.report(err)
    }
  }
}
