// A datagram proxy port (`reactor.listenDatagramProxy`): a UDP forwarder that runs in the core. Each
// client gets a session with its own connected upstream socket; datagrams and replies never pass
// through JS. This module checks the options, answers the routing function's questions (once per
// batch), and reports the port's figures.
import type { IPAddress } from './address'
import type { DatagramFamily } from './constants'
import { invalidArgType, invalidArgValue, outOfRange } from './errors'
import { Handle, nextTurn } from './handle'
import type { BatchHook, DatagramProxyEntry, ReactorHost } from './host'
import type { NativeDatagramProxyOptions, NativeDatagramProxyStats as DatagramProxyStats } from './native'
import { upstreamAddress } from './port-options'
import type { Batch } from './records'
import { arrayArgument, bufferSizeArgument, describe, limitArgument, optionsArgument, portArgument, timeoutArgument } from './validate'

/** Where datagrams go: an IP literal (either family, whatever the port's) and a port (1..65535). */
export interface DatagramUpstream {
  /** An IP literal, e.g. "10.0.0.7" or "::1" (no name lookup). */
  host: string
  /** The upstream's port, 1..65535. */
  port: number
}

/**
 * Called once per new client, with the first datagram it sent: return its upstream, or null to
 * drop the client (counted as `refusedByRoute`). Called in batches, on the JS thread; the client's
 * later datagrams wait for the answer (16 at most). What it throws is reported to `onError` and
 * refuses the client.
 */
export type DatagramRouter = (client: IPAddress, firstDatagram: Buffer) => DatagramUpstream | null | undefined

/** `listenDatagramProxy`'s options. */
export interface DatagramProxyOptions {
  /** One upstream, a list (new sessions go to each in turn), or a routing function. */
  upstream: DatagramUpstream | readonly DatagramUpstream[] | DatagramRouter
  /** A session that saw no datagram either way for this long ends (ms; default 30000; Infinity: never). */
  idleTimeout?: number | undefined
  /** Sessions at most (open, or waiting for the routing function); a new client past it is dropped
   *  and counted (`refusedMaxSessions`). Default Infinity. */
  maxSessions?: number | undefined
  /** A session ends once it received this many replies per datagram it forwarded, as nginx's
   *  `proxy_responses` (1 for DNS). Default Infinity: only the idle timeout ends it. */
  responses?: number | undefined
  /** 'v2': a PROXY protocol v2 header (the client's address, UDP) in front of each datagram to the upstream. */
  proxyHeader?: 'v2' | undefined
  /** Bind each upstream socket to a local port in [low, high]; a client for whom none is free is
   *  refused and counted (`refusedNoSourcePort`). Default: any port the kernel picks. */
  sourcePortRange?: readonly [low: number, high: number] | undefined
  /** SO_RCVBUF of the listening socket (bytes). Past net.core.rmem_max only with CAP_NET_ADMIN;
   *  what the kernel set, doubled by Linux for its bookkeeping, is in `stats().recvBufferSize`. */
  recvBufferSize?: number | undefined
  /** SO_SNDBUF for the listening socket (bytes), as `recvBufferSize`. */
  sendBufferSize?: number | undefined
}

// A datagram proxy's figures: the binding's type, generated from the core's list
// (crates/core/src/wire/stats.rs).
export type { DatagramProxyStats }

type NativeOptions = NativeDatagramProxyOptions

/** The default idle timeout (ms): UDP has no end of session, so one is always kept. */
const DEFAULT_IDLE_TIMEOUT = 30_000

export interface CheckedDatagramProxyOptions {
  native: NativeOptions
  router: DatagramRouter | null
}

/** Checks `options` (every check before anything is opened) into what the binding takes. */
export function checkDatagramProxyOptions(options: unknown, what: string): CheckedDatagramProxyOptions {
  const o = optionsArgument(options as DatagramProxyOptions, `${what}: options`, { required: true })
  const native: NativeOptions = {}
  let router: DatagramRouter | null = null
  const upstream = o.upstream
  if (typeof upstream === 'function') {
    router = upstream as DatagramRouter
    native.routeByConsumer = true
  } else if (Array.isArray(upstream)) {
    const list = arrayArgument(upstream, `${what}: options.upstream`)
    if (list.length === 0) throw invalidArgValue(`${what}: options.upstream must not be an empty list`)
    native.upstreams = list.map((u, i) => upstreamAddress(u, `${what}: options.upstream[${i}]`, { unix: false }))
  } else if (upstream !== undefined && upstream !== null && typeof upstream === 'object') {
    native.upstreams = [upstreamAddress(upstream, `${what}: options.upstream`, { unix: false })]
  } else {
    throw invalidArgType(`${what}: options.upstream must be { host, port }, a list of them, or a function, not ${describe(upstream)}`)
  }
  const idle = timeoutArgument(o.idleTimeout ?? DEFAULT_IDLE_TIMEOUT, `${what}: options.idleTimeout`)
  if (idle !== null) native.idleTimeoutMs = Math.ceil(idle)
  // Infinity (null) is no limit: the core's default, so nothing is set.
  const maxSessions = o.maxSessions === undefined ? null : limitArgument(o.maxSessions, `${what}: options.maxSessions`)
  if (maxSessions !== null) native.maxSessions = maxSessions
  const responses = o.responses === undefined ? null : limitArgument(o.responses, `${what}: options.responses`)
  if (responses !== null) native.responses = responses
  if (o.proxyHeader !== undefined) {
    if (typeof o.proxyHeader !== 'string') throw invalidArgType(`${what}: options.proxyHeader must be 'v2', not ${describe(o.proxyHeader)}`)
    if (o.proxyHeader !== 'v2') throw invalidArgValue(`${what}: options.proxyHeader must be 'v2' (PROXY protocol v1 has no UDP), not ${JSON.stringify(o.proxyHeader)}`)
    native.proxyHeader = true
  }
  if (o.sourcePortRange !== undefined) {
    const range = arrayArgument(o.sourcePortRange, `${what}: options.sourcePortRange`)
    if (range.length !== 2) throw invalidArgValue(`${what}: options.sourcePortRange must be [low, high], not ${range.length} numbers`)
    const [low, high] = range.map((p, i) => portArgument(p, `${what}: options.sourcePortRange[${i}]`))
    if (low === 0 || low > high) throw outOfRange(`${what}: options.sourcePortRange must have 1 <= low <= high, not [${low}, ${high}]`)
    native.sourcePortLow = low
    native.sourcePortHigh = high
  }
  if (o.recvBufferSize !== undefined) native.recvBufferSize = bufferSizeArgument(o.recvBufferSize, `${what}: options.recvBufferSize`)
  if (o.sendBufferSize !== undefined) native.sendBufferSize = bufferSizeArgument(o.sendBufferSize, `${what}: options.sendBufferSize`)
  return { native, router }
}


/** A UDP forwarder running in the core, as `listenDatagramProxy` returns it; `A` is the class of
 *  its address (`getHost()`), by its family. */
export class DatagramProxyPort<A extends IPAddress = IPAddress> extends Handle implements DatagramProxyEntry, BatchHook {
  private stopped: Promise<void> | null = null
  private closed: () => void = () => {}
  /** The figures last read (after the close: the final ones). */
  private last: DatagramProxyStats
  /** Routing answers of the batch being dispatched, sent together at its end. */
  private answers: { tokens: number[]; hosts: string[]; ports: number[] } | null = null

  /** @internal Made by the reactor. */
  constructor(
    host: ReactorHost,
    id: number,
    /** The socket's address family (`AddressFamily.INET` or `INET6`). */
    readonly family: DatagramFamily,
    /** Decoded once, so it still answers after the stop. */
    private readonly address: A,
    private readonly router: DatagramRouter | null,
  ) {
    super(host, id, 'datagramProxy')
    host.register('datagramProxy', id, this)
    this.last = host.native.datagramProxyStats(id) as DatagramProxyStats
  }

  /** The address the port receives on (still answers after the stop). */
  getHost(): A {
    return this.address
  }

  /**
   * Stops reading the socket now (the caller's fd, or a successor's, goes on receiving); the
   * sessions go on until they end (idle timeout, `responses`) and their replies still leave.
   * Resolves once the last has ended and the core closed its duplicate, on a later turn; every
   * call resolves. With no idle timeout and no `responses`, sessions last until `reactor.close()`.
   */
  stopListening(): Promise<void> {
    if (this.stopped !== null) return this.stopped.then(nextTurn)
    const closed = new Promise<void>((resolve) => (this.closed = resolve))
    if (!this.isLive || !this.host.native.stopDatagramProxy(this.id)) this.onClosed()
    this.stopped = Promise.all([closed, nextTurn()]).then(() => undefined)
    return this.stopped
  }

  /** A new close-on-exec descriptor of the socket, owned by the caller (see
   *  ListeningPort.duplicateFd): 'EBADF' once stopListening() was called, though the core still
   *  finishes the sessions on it. */
  duplicateFd(): number {
    return this.duplicateSocket('duplicateFd', this.stopped === null)
  }

  /** The port's figures now (after its close: the final ones). */
  stats(): DatagramProxyStats {
    if (this.isLive) this.last = this.host.native.datagramProxyStats(this.id) ?? this.last
    return { ...this.last }
  }

  /** @internal EV_DATAGRAM_ROUTE: asks the routing function, answers at the end of the batch. */
  onRoute(batch: Batch, at: number): void {
    const { token, client, datagram } = batch.datagramRoute(at)
    let to: DatagramUpstream | null = null
    try {
      to = this.route(client, datagram)
    } catch (err) {
      this.host.report(err)
    }
    if (this.answers === null) {
      this.answers = { tokens: [], hosts: [], ports: [] }
      this.host.flushAfterBatch(this)
    }
    this.answers.tokens.push(token)
    this.answers.hosts.push(to?.host ?? '')
    this.answers.ports.push(to?.port ?? 0)
  }

  private route(client: IPAddress, datagram: Buffer): DatagramUpstream | null {
    if (this.router === null) return null
    const to = this.router(client, datagram)
    if (to === null || to === undefined) return null
    return upstreamAddress(to, 'listenDatagramProxy: the routing function\'s answer', { unix: false })
  }

  /** @internal Sends the batch's routing answers in one call. */
  flushReceived(): void {
    const answers = this.answers
    this.answers = null
    if (answers !== null && this.isLive) this.host.native.routeDatagrams(this.id, answers.tokens, answers.hosts, answers.ports)
  }

  /** @internal EV_DATAGRAM_PROXY_CLOSED (or a stop of a port the core no longer has). */
  onClosed(): void {
    if (this.isLive) {
      const final = this.host.native.datagramProxyStats(this.id)
      if (final) this.last = final
      this.detach()
    }
    this.closed()
  }

  /** @internal reactor.close(): the core closes everything; keep the figures so far. */
  onReactorClose(): void {
    this.onClosed()
  }
}
