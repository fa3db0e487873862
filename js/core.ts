// The live side of a reactor: the native core, the registry of live handles by id, the dispatch of
// event batches to them, and Node-loop liveness (the core holds the loop while a ref'd handle lives).
import type { Address } from './address'
import type { DatagramPort } from './datagram'
import { nextTurn, type Handle, type HandleHost } from './handle'
import type { IProtocol } from './interfaces'
import {
  EV_ACCEPT,
  EV_CLOSED,
  EV_DATA,
  EV_DATAGRAM,
  EV_DATAGRAM_ERROR,
  EV_DATA_CHUNK,
  EV_DRAINED,
  EV_EOF,
  EV_WRITE_CLOSED,
  EV_CONNECTED,
  EV_RELAY_ENDED,
  EV_FDS,
} from './wire'
import { closeDescriptors } from './descriptors'
import type { NativeReactor } from './native'
import { Batch } from './records'
import type { PendingConnect } from './connect'
import type { ListeningPort } from './port'
import type { ActiveRelay } from './relay'
import { StreamTransport } from './transport'

export type ErrorReporter = (err: unknown) => void

/** How long one announcement may keep JS busy taking batches before Node's loop gets a turn. */
const MAX_DISPATCH_MS = 20

export class ReactorCore implements HandleHost {
  readonly native: NativeReactor
  readonly connections = new Map<number, StreamTransport>()
  readonly ports = new Map<number, ListeningPort>()
  /** Stopped ports whose already-accepted connections are still on their way to JS. */
  readonly drainingPorts = new Map<number, ListeningPort>()
  /** The batch being dispatched (its cursor says what is still to come). */
  private batch: Batch | null = null
  readonly datagramPorts = new Map<number, DatagramPort>()
  /** Outbound connects in progress, by the id of their connection. */
  readonly pendingConnects = new Map<number, PendingConnect>()
  /** Relays running, by id. */
  readonly relays = new Map<number, ActiveRelay>()
  private refdHandles = 0
  private dispatching = false
  /** Datagram ports whose batch hook runs when the current batch is done. */
  private batchHooks: DatagramPort[] = []
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

  // ---- HandleHost ----------------------------------------------------------------------------

  hold(): void {
    if (++this.refdHandles === 1 && !this.closed) this.native.ref()
  }

  release(): void {
    if (--this.refdHandles === 0 && !this.closed) this.native.unref()
  }

  forget(handle: Handle): void {
    const id = handle.id
    if (this.connections.get(id) === handle) this.connections.delete(id)
    else if (this.ports.get(id) === handle) this.ports.delete(id)
    else if (this.datagramPorts.get(id) === handle) this.datagramPorts.delete(id)
  }

  /** Accept records for `portId` still ahead in the batch being dispatched. */
  acceptsAhead(portId: number): number {
    return this.batch === null ? 0 : this.batch.countAhead(EV_ACCEPT, portId)
  }

  /** An orderly close, at once, of an accepted connection no protocol will own. */
  closeUnwanted(id: number): void {
    this.native.loseConnection(id)
    this.native.releaseClose(id)
  }

  /** Whether `transport` is a live connection of this reactor. */
  owns(transport: StreamTransport): boolean {
    return this.connections.get(transport.id) === transport
  }

  /**
   * Takes out of the batch being dispatched the input records of `ids` still ahead of the cursor,
   * blanking them: a relay sends those bytes on itself, in order. Descriptors cannot be relayed:
   * they are closed.
   */
  takeDataAhead(ids: number[]): Map<number, Buffer[]> {
    if (this.batch === null) return new Map()
    const taken = this.batch.takeInputAhead(ids)
    closeDescriptors(taken.fds)
    return taken.bytes
  }

  flushAfterBatch(port: DatagramPort): void {
    this.batchHooks.push(port)
  }

  acceptConnection(id: number, family: number, protocol: IProtocol, peer: Address): void {
    this.addConnection(id, family, protocol, peer).start()
  }

  // ---- Registration of adopted handles (the reactor undoes them if an adopt callback throws) --

  addConnection(id: number, family: number, protocol: IProtocol, peer: Address): StreamTransport {
    const transport = new StreamTransport(this, id, family, protocol, peer)
    this.connections.set(id, transport)
    return transport
  }

  addPort(port: ListeningPort): void {
    this.ports.set(port.id, port)
  }

  addDatagramPort(port: DatagramPort): void {
    this.datagramPorts.set(port.id, port)
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
    for (let at = batch.advance(); at >= 0 && !this.closed; at = batch.advance()) {
      try {
        this.route(batch, at)
      } catch (err) {
        this.report(err)
      }
    }
    this.batch = null
    if (this.batchHooks.length > 0) {
      const ports = this.batchHooks
      this.batchHooks = []
      for (const port of ports) port.flushReceived()
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
        this.datagramPorts.get(id)?.onDatagram(batch, at)
        break
      case EV_ACCEPT: {
        const port = this.ports.get(id) ?? this.drainingPorts.get(id)
        if (port !== undefined) port.onAccept(batch.acceptedId(at), batch.peer(at))
        else this.closeUnwanted(batch.acceptedId(at))
        break
      }
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
        if (connection !== undefined) connection.onClosed(batch.errno(at))
        else this.pendingConnects.get(id)?.onFailed(batch.errno(at))
        break
      }
      case EV_FDS: {
        const connection = this.connections.get(id)
        if (connection !== undefined) connection.onFileDescriptors(batch.fds(at))
        else closeDescriptors(batch.fds(at)) // nobody will own them
        break
      }
      case EV_CONNECTED:
        this.pendingConnects.get(id)?.onConnected(batch.peer(at))
        break
      case EV_RELAY_ENDED:
        this.relays.get(id)?.onEnded(...batch.relayCounts(at))
        break
      case EV_DATAGRAM_ERROR: {
        const port = this.datagramPorts.get(id)
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
    for (const relay of Array.from(this.relays.values())) relay.onReactorClose()
    const closed = Object.assign(new Error('the reactor is closed'), { code: 'ERR_REACTOR_CLOSED' })
    for (const pending of Array.from(this.pendingConnects.values())) pending.abort(closed)
    const connections = Array.from(this.connections.values())
    const ports: Array<ListeningPort | DatagramPort> = [...this.ports.values(), ...this.datagramPorts.values()]
    for (const connection of connections) connection.abortConnection()
    const stops = ports.map((port) => port.stopListening())
    // Accepted connections still on their way will never arrive: the core closes them.
    for (const port of this.drainingPorts.values()) port.drained()
    this.drainingPorts.clear()
    this.closed = true
    this.native.close()
    return Promise.all([...stops, nextTurn()]).then(() => undefined)
  }
}
