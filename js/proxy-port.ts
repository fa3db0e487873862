// A native proxy port (`reactor.listenProxy`): the core accepts, reads the PROXY header if asked,
// connects to an upstream and relays, with no JS per connection. JS keeps the handle (liveness,
// stop, drain, figures) and, when the upstream is a function, answers the core's routing questions
// once per batch.
import type { Address } from './address'
import { Handle, nextTurn } from './handle'
import type { ProxyPortEntry, ReactorHost } from './host'
import type { ProxyClient, ProxyPortOptions, UpstreamAddress } from './port-options'
import { upstreamAddress } from './port-options'
import { PortDrain, portStats, setPortSecureContext, type DrainOptions, type PortStats } from './port'
import type { TlsServerOptions } from './tls-options'
import type { ProxyInfo } from './proxy-info'
import type { DrainCounts } from './records'

type RouteFunction = Extract<ProxyPortOptions['upstream'], (client: ProxyClient) => unknown>

/** A TCP / UNIX proxy running in the core, as `listenProxy` returns it; `A` is the class of its
 *  address (`getHost()`), by its family. */
export class ProxyPort<A extends Address = Address> extends Handle implements ProxyPortEntry {
  private stopped: Promise<void> | null = null
  private readonly draining = new PortDrain()
  private lastStats: PortStats | null = null
  /** Routing answers of the batch being dispatched, sent to the core in one call at its end. */
  private answers: { sessions: number[]; hosts: string[]; ports: number[] } = { sessions: [], hosts: [], ports: [] }

  /** @internal Made by the reactor. */
  constructor(
    host: ReactorHost,
    id: number,
    /** Decoded once at adoption, so it still answers after the stop. */
    private readonly address: A,
    private readonly route: RouteFunction | null,
  ) {
    super(host, id, 'proxy')
    host.register('proxy', id, this)
  }

  /** The address the port listens on (still answers after the stop). */
  getHost(): A {
    return this.address
  }

  /** A new close-on-exec descriptor of the listening socket, owned by the caller (see
   *  ListeningPort.duplicateFd): 'EBADF' once stopped. */
  duplicateFd(): number {
    return this.duplicateSocket('duplicateFd')
  }

  /** The port's figures: accepted, active, refused per reason, PROXY header errors, connect
   *  failures (per upstream too), bytes each way and how many were spliced. */
  stats(): PortStats {
    this.lastStats = portStats(this.host, this.id, this.lastStats)
    return this.lastStats
  }

  /**
   * Replaces the certificates (and TLS options) of a proxy port made with `tls`, for handshakes
   * from now on; sessions under way keep theirs (see ListeningPort.setSecureContext).
   */
  setSecureContext(options: TlsServerOptions): void {
    setPortSecureContext(this.host, this.id, this.isLive, options)
  }

  /**
   * Closes the reactor's duplicate now (a caller's fd still listens). Sessions already accepted go
   * on until they end. Every call resolves, each on a later turn.
   */
  stopListening(): Promise<void> {
    if (this.stopped === null) {
      if (this.isLive) {
        this.stats()
        this.host.native.closePort(this.id)
        this.detach()
      }
      this.stopped = nextTurn()
    }
    return this.stopped.then(nextTurn)
  }

  /**
   * A graceful stop, for a restart: accepts nothing more, closes idle sessions at once (no byte
   * either way for `idleAfter` ms, or not yet connected upstream), lets the others finish until
   * `deadline` ms, then closes the rest. Resolves with the counts once the last session is gone.
   */
  drain(options?: DrainOptions): Promise<DrainCounts> {
    return this.draining.start(this.host, this.id, this.isLive, options)
  }

  /** @internal EV_PORT_DRAINED. */
  onDrainEnded(counts: DrainCounts): void {
    this.stats()
    this.detach()
    this.stopped ??= nextTurn()
    this.draining.finish(this.stopped, counts)
  }

  /** @internal EV_ROUTE: asks the routing function; its answer leaves with the batch's others. */
  onRoute(session: number, client: () => Address, proxy: ProxyInfo | null): void {
    let to: UpstreamAddress | null = null
    try {
      if (this.route === null) throw new Error('listenProxy: a routing question for a port without a routing function')
      const answer = this.route({ address: client(), proxy })
      if (answer !== null && answer !== undefined) to = answer
    } catch (err) {
      this.host.report(err) // reported; that client is refused, the port goes on
    }
    let host = ''
    let port = 0
    if (to !== null) {
      try {
        const checked = upstreamAddress(to, 'listenProxy: the routing function\'s answer', { unix: true })
        host = checked.path ?? checked.host ?? ''
        port = checked.port ?? 0
      } catch (err) {
        this.host.report(err)
      }
    }
    if (this.answers.sessions.length === 0) this.host.flushAfterBatch(this)
    this.answers.sessions.push(session)
    this.answers.hosts.push(host)
    this.answers.ports.push(port)
  }

  /** @internal End of the batch: the routing answers go to the core in one call. */
  flushReceived(): void {
    const { sessions, hosts, ports } = this.answers
    if (sessions.length === 0) return
    this.answers = { sessions: [], hosts: [], ports: [] }
    this.host.native.route(sessions, hosts, ports)
  }
}

export type { DrainOptions, PortStats }
