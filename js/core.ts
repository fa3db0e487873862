// The live side of a reactor: the native core, the registry of what is live by kind and id, the
// dispatch of event batches to it, and Node-loop liveness (the core holds the loop while a ref'd
// handle lives). It knows the parts only by the interfaces of host.ts.
import { closeDescriptors } from './descriptors'
import { reactorClosed } from './errors'
import { nextTurn } from './handle'
import type { BatchHook, ConnectionEntry, Entries, EntryKind, ReactorHost } from './host'
import type { ProxyInfo } from './proxy-info'
import type { TLSError } from './errors'
import type { TlsInfo } from './tls-types'
import type { NativeReactor } from './native'
import { Batch } from './records'
import {
  EV_ACCEPT,
  EV_CLOSED,
  EV_CONNECTED,
  EV_DATA,
  EV_DATAGRAM,
  EV_DATAGRAM_ERROR,
  EV_DATA_CHUNK,
  EV_DRAINED,
  EV_EOF,
  EV_FDS,
  EV_RELAY_ENDED,
  EV_WRITE_CLOSED,
  EV_PROXY_INFO,
  EV_ROUTE,
  EV_PORT_DRAINED,
  EV_TLS_READY,
  EV_TLS_ERROR,
} from './wire'
import { EV_DATAGRAM_PROXY_CLOSED, EV_DATAGRAM_ROUTE } from './wire'

export type ErrorReporter = (err: unknown) => void

/** How long one announcement may keep JS busy taking batches before Node's loop gets a turn. */
const MAX_DISPATCH_MS = 20

type Registry = { [K in EntryKind]: Map<number, Entries[K]> }

export class ReactorCore implements ReactorHost {
  readonly native: NativeReactor
  private readonly registry: Registry = {
    connection: new Map(),
    port: new Map(),
    draining: new Map(),
    datagram: new Map(),
    connect: new Map(),
    relay: new Map(),
    proxy: new Map(),
    datagramProxy: new Map(),
  }
  /** PROXY headers of the batch being dispatched, by connection or session, until its ACCEPT or ROUTE. */
  private readonly proxyInfo = new Map<number, ProxyInfo>()
  /** TLS parameters of the batch being dispatched, by connection, until its ACCEPT or CONNECTED;
   *  TLS failures, until their EV_CLOSED. */
  private readonly tlsInfo = new Map<number, TlsInfo>()
  private readonly tlsErrors = new Map<number, TLSError>()
  /** The registry's busiest map, for the dispatch. */
  private readonly connections: Map<number, ConnectionEntry> = this.registry.connection
  /** The batch being dispatched (its cursor says what is still to come). */
  private batch: Batch | null = null
  private refdHandles = 0
  private dispatching = false
  /** Entries whose batch hook runs when the current batch is done. */
  private batchHooks: BatchHook[] = []
  /** Reused for every batch: the core copies each batch's records in here. */
  private readonly records = Batch.recordArray()
  private closed = false

  /** `openNative` makes the native reactor that calls back `onReady` when batches are pending. */
  constructor(
    openNative: (onReady: () => void) => NativeReactor,
    readonly report: ErrorReporter,
  ) {
    this.native = openNative(() => this.onReady())
  }

  // ---- ReactorHost ---------------------------------------------------------------------------

  hold(): void {
    if (++this.refdHandles === 1 && !this.closed) this.native.ref()
  }

  release(): void {
    if (--this.refdHandles === 0 && !this.closed) this.native.unref()
  }

  register<K extends EntryKind>(kind: K, id: number, entry: Entries[K]): void {
    ;(this.registry[kind] as Map<number, Entries[K]>).set(id, entry)
  }

  forget(kind: EntryKind, id: number, entry: object): void {
    const entries: Map<number, object> = this.registry[kind]
    if (entries.get(id) === entry) entries.delete(id)
  }

  lookup<K extends EntryKind>(kind: K, id: number): Entries[K] | undefined {
    return (this.registry[kind] as Map<number, Entries[K]>).get(id)
  }

  closeUnwanted(id: number): void {
    this.native.loseConnection(id)
    this.native.releaseClose(id)
  }

  acceptsAhead(portId: number): number {
    return this.batch === null ? 0 : this.batch.countAhead(EV_ACCEPT, portId)
  }

  takeInputAhead(ids: number[]): Map<number, Buffer[]> {
    if (this.batch === null) return new Map()
    const taken = this.batch.takeInputAhead(ids)
    closeDescriptors(taken.fds) // descriptors cannot be relayed
    return taken.bytes
  }

  flushAfterBatch(entry: BatchHook): void {
    this.batchHooks.push(entry)
  }

  private takeProxyInfo(id: number): ProxyInfo | null {
    const info = this.proxyInfo.get(id)
    if (info === undefined) return null
    this.proxyInfo.delete(id)
    return info
  }

  private takeTlsInfo(id: number): TlsInfo | null {
    const info = this.tlsInfo.get(id)
    if (info === undefined) return null
    this.tlsInfo.delete(id)
    return info
  }

  private takeTlsError(id: number): TLSError | undefined {
    const err = this.tlsErrors.get(id)
    if (err !== undefined) this.tlsErrors.delete(id)
    return err
  }

  // ---- Dispatch ------------------------------------------------------------------------------

  /** Called by the core (no arguments) when batches are pending: take them until there are none. */
  private onReady(): void {
    if (this.dispatching) return // the outer loop takes what is pending
    this.dispatching = true
    let more = false
    try {
      // Drain what is pending, but yield to Node's loop now and then: while data keeps arriving
      // faster than JS handles it, timers and other I/O must still get their turn.
      const deadline = Date.now() + MAX_DISPATCH_MS
      let batch: Batch | null
      while (!this.closed && (batch = Batch.take(this.native, this.records)) !== null) {
        this.dispatch(batch)
        if (Date.now() >= deadline) {
          more = true // the core still counts this announcement as in flight: we come back
          break
        }
      }
    } catch (err) {
      this.report(err) // a failing takeBatch: never let it reach the native caller
    } finally {
      this.dispatching = false
    }
    if (more) setImmediate(() => this.onReady())
  }

  /**
   * Each handle guards its own callbacks, so one misbehaving protocol never stops the batch for
   * the others; anything else that throws is reported and the batch goes on with the next record
   * (an exception must never reach the native caller).
   */
  private dispatch(batch: Batch): void {
    this.batch = batch
    this.proxyInfo.clear()
    this.tlsInfo.clear()
    this.tlsErrors.clear()
    for (let at = batch.advance(); at >= 0 && !this.closed; at = batch.advance()) {
      try {
        this.route(batch, at)
      } catch (err) {
        this.report(err)
      }
    }
    // Closed from a callback: the records left will not be routed, and descriptors were handed
    // over with them: nobody else will ever close them.
    if (this.closed) closeDescriptors(batch.descriptorsAhead())
    if (batch.carriedDescriptors) this.native.fdsSettled()
    this.batch = null
    if (this.batchHooks.length > 0) {
      const entries = this.batchHooks
      this.batchHooks = []
      for (const entry of entries) {
        try {
          entry.flushReceived()
        } catch (err) {
          this.report(err)
        }
      }
    }
  }

  /** Records for ids JS already forgot are ignored, except those that hand over something that
   *  must be closed: an accepted connection, received descriptors. */
  private route(batch: Batch, at: number): void {
    const id = batch.id(at)
    switch (batch.kind(at)) {
      case EV_DATA:
      case EV_DATA_CHUNK:
        this.connections.get(id)?.onData(batch.bytes(at))
        break
      case EV_DATAGRAM:
        this.registry.datagram.get(id)?.onDatagram(batch, at)
        break
      case EV_ACCEPT: {
        const port = this.registry.port.get(id) ?? this.registry.draining.get(id)
        const conn = batch.acceptedId(at)
        if (port !== undefined) port.onAccept(conn, batch.peer(at), this.takeProxyInfo(conn), this.takeTlsInfo(conn))
        else this.closeUnwanted(conn)
        break
      }
      case EV_PROXY_INFO:
        this.proxyInfo.set(id, batch.proxyInfo(at))
        break
      case EV_ROUTE: {
        const port = this.registry.proxy.get(batch.routePort(at))
        const info = this.takeProxyInfo(id)
        if (port !== undefined) port.onRoute(id, batch.routeClient(at), info)
        else this.native.route([id], [''], [0]) // its port is gone: refuse the client
        break
      }
      case EV_PORT_DRAINED:
        ;(this.registry.port.get(id) ?? this.registry.proxy.get(id) ?? this.registry.draining.get(id))?.onDrainEnded(batch.drainCounts(at))
        break
      case EV_DRAINED:
        this.connections.get(id)?.onDrained()
        break
      case EV_EOF:
        this.connections.get(id)?.onEof()
        break
      case EV_WRITE_CLOSED:
        this.connections.get(id)?.onWriteClosed()
        break
      case EV_CLOSED: {
        const connection = this.connections.get(id)
        const tls = this.takeTlsError(id)
        if (connection !== undefined) connection.onClosed(batch.errno(at), tls)
        else this.registry.connect.get(id)?.onFailed(batch.errno(at), tls)
        break
      }
      case EV_TLS_READY: {
        const connection = this.connections.get(id)
        if (connection !== undefined) connection.onTlsReady(batch.tlsInfo(at))
        else this.tlsInfo.set(id, batch.tlsInfo(at))
        break
      }
      case EV_TLS_ERROR:
        this.tlsErrors.set(id, batch.tlsError(at))
        break
      case EV_FDS: {
        const connection = this.connections.get(id)
        if (connection !== undefined) connection.onFileDescriptors(batch.fds(at))
        else closeDescriptors(batch.fds(at)) // nobody will own them
        break
      }
      case EV_CONNECTED:
        this.registry.connect.get(id)?.onConnected(batch.peer(at), this.takeTlsInfo(id))
        break
      case EV_RELAY_ENDED:
        this.registry.relay.get(id)?.onEnded(...batch.relayCounts(at))
        break
      case EV_DATAGRAM_ROUTE:
        this.registry.datagramProxy.get(id)?.onRoute(batch, at)
        break
      case EV_DATAGRAM_PROXY_CLOSED:
        this.registry.datagramProxy.get(id)?.onClosed()
        break
      case EV_DATAGRAM_ERROR: {
        const port = this.registry.datagram.get(id)
        port?.flushReceived() // what arrived before the error comes first
        port?.onDatagramError(batch.errno(at))
        break
      }
      default:
        break // EV_NONE (taken out by a relay), or a kind this layer does not know: ignore it
    }
  }

  // ---- Close ---------------------------------------------------------------------------------

  /** Aborts every connection, stops every port, then closes the core (joins its thread). */
  close(): Promise<void> {
    for (const relay of this.all('relay')) relay.onReactorClose()
    const closed = reactorClosed()
    for (const pending of this.all('connect')) pending.abort(closed)
    for (const connection of this.all('connection')) connection.abortConnection()
    const stops = [...this.all('port'), ...this.all('datagram'), ...this.all('proxy')].map((port) => port.stopListening())
    for (const proxy of this.all('datagramProxy')) proxy.onReactorClose()
    // Accepted connections still on their way will never arrive: the core closes them.
    for (const port of this.all('draining')) port.drained()
    this.registry.draining.clear()
    this.closed = true
    this.native.close()
    return Promise.all([...stops, nextTurn()]).then(() => undefined)
  }

  /** What is registered under `kind` now (a copy: closing an entry forgets it). */
  private all<K extends EntryKind>(kind: K): Entries[K][] {
    return Array.from((this.registry[kind] as Map<number, Entries[K]>).values())
  }
}
