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
  EV_NONE,
  EV_FDS,
  EVENT_STRIDE,
  BATCH_HEADER,
  RECORDS_OVERFLOW,
} from './wire'
import { closeDescriptors } from './descriptors'
import type { NativeReactor } from './native'
import type { PendingConnect } from './connect'
import type { ListeningPort } from './port'
import type { ActiveRelay } from './relay'
import { StreamTransport } from './transport'

export type ErrorReporter = (err: unknown) => void


const NO_CHUNKS: Buffer[] = []
/** How long one announcement may keep JS busy taking batches before Node's loop gets a turn. */
const MAX_DISPATCH_MS = 20

export class ReactorCore implements HandleHost {
  readonly native: NativeReactor
  readonly connections = new Map<number, StreamTransport>()
  readonly ports = new Map<number, ListeningPort>()
  /** Stopped ports whose already-accepted connections are still on their way to JS. */
  readonly drainingPorts = new Map<number, ListeningPort>()
  /** The batch being dispatched and the position in it (to count what is still to come). */
  private cursor: { events: Uint32Array; next: number; end: number; data: Buffer } | null = null
  readonly datagramPorts = new Map<number, DatagramPort>()
  /** Outbound connects in progress, by the id of their connection. */
  readonly pendingConnects = new Map<number, PendingConnect>()
  /** Relays running, by id. */
  readonly relays = new Map<number, ActiveRelay>()
  private refdHandles = 0
  private dispatching = false
  /** The large reads of the batch being dispatched. */
  private chunks: Buffer[] = []
  /** Datagram ports whose batch hook runs when the current batch is done. */
  private batchHooks: DatagramPort[] = []
  /** Reused for every batch: the core copies each batch's records in here. */
  private readonly records = new Uint32Array(BATCH_HEADER + 4096 * EVENT_STRIDE)
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
    const c = this.cursor
    if (c === null) return 0
    let n = 0
    for (let i = c.next; i < c.end; i += EVENT_STRIDE) if (c.events[i] === EV_ACCEPT && c.events[i + 1] === portId) n++
    return n
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
   * Takes out of the batch being dispatched the data records of `ids` still ahead of the cursor
   * (and their EOF records), blanking them: a relay sends those bytes on itself, in order.
   */
  takeDataAhead(ids: number[]): Map<number, Buffer[]> {
    const out = new Map<number, Buffer[]>()
    const c = this.cursor
    if (c === null) return out
    for (let i = c.next; i < c.end; i += EVENT_STRIDE) {
      const kind = c.events[i]
      const id = c.events[i + 1]
      if (!ids.includes(id) || (kind !== EV_DATA && kind !== EV_DATA_CHUNK && kind !== EV_EOF && kind !== EV_FDS)) continue
      if (kind === EV_FDS) {
        // Descriptors cannot be relayed: close them.
        closeDescriptors(Array.from({ length: c.events[i + 3] }, (_, k) => c.data.readUInt32LE(c.events[i + 2] + 4 * k)))
      } else if (kind !== EV_EOF) {
        const chunk = kind === EV_DATA ? c.data.subarray(c.events[i + 2], c.events[i + 2] + c.events[i + 3]) : this.chunks[c.events[i + 2]].subarray(0, c.events[i + 3])
        const list = out.get(id)
        if (list === undefined) out.set(id, [chunk])
        else list.push(chunk)
      }
      c.events[i] = EV_NONE
    }
    return out
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
      let data: Buffer | null = null
      // Drain what is pending, but yield to Node's loop now and then: while data keeps arriving
      // faster than JS handles it, timers and other I/O must still get their turn.
      const deadline = Date.now() + MAX_DISPATCH_MS
      while (!this.closed && (data = this.native.takeBatch(this.records)) !== null) {
        this.chunks = this.records[1] > 0 ? this.native.takeChunks() : NO_CHUNKS
        if (this.records[0] === RECORDS_OVERFLOW) {
          const events = this.native.takeOverflowEvents()
          this.dispatch(events, 0, events.length, data)
        } else {
          this.dispatch(this.records, BATCH_HEADER, BATCH_HEADER + this.records[0] * EVENT_STRIDE, data)
        }
        if (Date.now() >= deadline) {
          more = true // the core still counts this announcement as in flight: we come back
          break
        }
      }
      this.chunks = NO_CHUNKS
    } catch (err) {
      this.report(err) // a failing takeBatch: never let it reach the native caller
    } finally {
      this.dispatching = false
    }
    if (more) setImmediate(() => this.onReady())
  }

  /**
   * Events are [kind, id, a, b] records. Each handle guards its own callbacks, so one misbehaving
   * protocol never stops the batch for the others; anything else that throws is reported and the
   * batch goes on with the next event (an exception must never reach the native caller).
   */
  private dispatch(events: Uint32Array, start: number, end: number, data: Buffer): void {
    const cursor = { events, next: start, end, data }
    this.cursor = cursor
    for (let i = start; i < end && !this.closed; i += EVENT_STRIDE) {
      cursor.next = i + EVENT_STRIDE
      try {
        this.dispatchEvent(events, data, i)
      } catch (err) {
        this.report(err)
      }
    }
    this.cursor = null
    if (this.batchHooks.length > 0) {
      const ports = this.batchHooks
      this.batchHooks = []
      for (const port of ports) port.flushReceived()
    }
  }

  /** Events for ids JS already closed are ignored, except an accept on a stopped port, whose new
   *  connection is closed so that nothing leaks. */
  private dispatchEvent(events: Uint32Array, data: Buffer, i: number): void {
    const id = events[i + 1]
    switch (events[i]) {
      case EV_DATA:
        this.connections.get(id)?.onData(data, events[i + 2], events[i + 3])
        break
      case EV_DATA_CHUNK:
        this.connections.get(id)?.onData(this.chunks[events[i + 2]], 0, events[i + 3])
        break
      case EV_DATAGRAM:
        this.datagramPorts.get(id)?.onDatagram(data, events[i + 2], events[i + 3])
        break
      case EV_ACCEPT: {
        const port = this.ports.get(id) ?? this.drainingPorts.get(id)
        if (port !== undefined) port.onAccept(events[i + 2], data, events[i + 3])
        else this.closeUnwanted(events[i + 2])
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
        if (connection !== undefined) connection.onClosed(events[i + 2])
        else this.pendingConnects.get(id)?.onFailed(events[i + 2])
        break
      }
      case EV_FDS: {
        const fds = Array.from({ length: events[i + 3] }, (_, k) => data.readUInt32LE(events[i + 2] + 4 * k))
        const connection = this.connections.get(id)
        if (connection !== undefined) connection.onFileDescriptors(fds)
        else closeDescriptors(fds) // nobody will own them
        break
      }
      case EV_CONNECTED:
        this.pendingConnects.get(id)?.onConnected(data, events[i + 2])
        break
      case EV_RELAY_ENDED: {
        const at = events[i + 2]
        this.relays.get(id)?.onEnded(Number(data.readBigUInt64LE(at)), Number(data.readBigUInt64LE(at + 8)))
        break
      }
      case EV_DATAGRAM_ERROR: {
        const port = this.datagramPorts.get(id)
        port?.flushReceived() // what arrived before the error comes first
        port?.onDatagramError(events[i + 2])
        break
      }
      default:
        break // an event kind this layer does not know: ignore it
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
