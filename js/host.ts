// What the parts of a reactor (ports, transports, datagram ports, connects, relays) see of its core,
// and what the core routes each kind of event to. Interfaces only: the parts depend on this, never
// on core.ts, so the core routes to them without importing them back.
import type { Address } from './address'
import type { NativeReactor } from './native'
import type { ProxyInfo } from './proxy-info'
import type { Batch, DrainCounts } from './records'
import type { TLSError } from './errors'
import type { TlsInfo } from './tls-types'

/** A live stream connection: the events of its id. */
export interface ConnectionEntry {
  onData(chunk: Buffer): void
  /** Descriptors the peer sent, ahead of the data they came with. */
  onFileDescriptors(fds: number[]): void
  onEof(): void
  onDrained(): void
  onWriteClosed(): void
  /** The core closed the connection; errno 0 is an orderly close. `tls`: the TLS failure that
   *  closed it (EV_TLS_ERROR just before). */
  onClosed(errno: number, tls?: TLSError): void
  /** EV_TLS_READY on a live connection: the handshake `startTLS` began completed. */
  onTlsReady(info: TlsInfo): void
  /** reactor.close(). */
  abortConnection(): void
}

/** A listening port: live, or stopped and still owed connections the core accepted before. */
export interface PortEntry {
  /** `peer` decodes the new connection's peer address (it throws for a family this layer does not
   *  know); `proxy` is the PROXY header it began with (ports that read them); `tls` its TLS
   *  session's parameters (TLS ports). */
  onAccept(id: number, peer: () => Address, proxy: ProxyInfo | null, tls?: TlsInfo | null): void
  /** EV_PORT_DRAINED: its drain is over and the core closed it. */
  onDrainEnded(counts: DrainCounts): void
  /** reactor.close(). */
  stopListening(): Promise<void>
  /** reactor.close(): connections still owed will never come. */
  drained(): void
}

/** Something that wants a call once the batch being dispatched is done. */
export interface BatchHook {
  flushReceived(): void
}

/** A proxy port (`listenProxy`): the core accepts, connects and relays; JS routes, if asked. */
export interface ProxyPortEntry extends BatchHook {
  /** EV_ROUTE: session `session` waits for an upstream for `client`. */
  onRoute(session: number, client: () => Address, proxy: ProxyInfo | null): void
  onDrainEnded(counts: DrainCounts): void
  /** reactor.close(). */
  stopListening(): Promise<void>
}

export interface DatagramEntry extends BatchHook {
  /** The datagram at `at` in `batch` (its payload and sender are decoded there). */
  onDatagram(batch: Batch, at: number): void
  onDatagramError(errno: number): void
  /** reactor.close(). */
  stopListening(): Promise<void>
}

/** An outbound connect in progress, by the id of its connection. */
export interface ConnectEntry {
  /** `tls`: the session's parameters (a connect with TLS: its handshake is done). */
  onConnected(peer: () => Address, tls?: TlsInfo | null): void
  /** The core reported why the connect failed (`tls`: its TLS handshake failed). */
  onFailed(errno: number, tls?: TLSError): void
  /** reactor.close() (with ERR_REACTOR_CLOSED). */
  abort(reason: unknown): void
}

export interface RelayEntry {
  onEnded(aToB: number, bToA: number): void
  /** reactor.close(): resolve with the counts so far. */
  onReactorClose(): void
}

/** A datagram proxy port (listenDatagramProxy). */
export interface DatagramProxyEntry {
  /** A new client waits for the routing function (its record at `at` in `batch`). */
  onRoute(batch: Batch, at: number): void
  /** Its stop finished: its sessions ended and the core closed its socket. */
  onClosed(): void
  /** reactor.close(). */
  onReactorClose(): void
}


/** The registry's kinds of entries, each with the events it gets. */
export interface Entries {
  connection: ConnectionEntry
  port: PortEntry
  /** Stopped ports still owed accepted connections (their ids may no longer be listening). */
  draining: PortEntry
  datagram: DatagramEntry
  connect: ConnectEntry
  relay: RelayEntry
  proxy: ProxyPortEntry
  datagramProxy: DatagramProxyEntry
}

export type EntryKind = keyof Entries

export interface ReactorHost {
  readonly native: NativeReactor
  /** Reports an exception thrown by user code (the `onError` option, stderr by default). */
  report(err: unknown): void
  /** Counts something ref'd that holds Node's loop (the core holds it while the count is above 0). */
  hold(): void
  release(): void
  /** Routes the events of `id` to `entry` until it is forgotten. */
  register<K extends EntryKind>(kind: K, id: number, entry: Entries[K]): void
  /** Stops routing to `entry` (if it is still the one registered for `id`): later events are ignored. */
  forget(kind: EntryKind, id: number, entry: object): void
  lookup<K extends EntryKind>(kind: K, id: number): Entries[K] | undefined
  /** Closes, orderly and at once, an accepted connection that no protocol will own. */
  closeUnwanted(id: number): void
  /** Accept records for `portId` still ahead in the batch being dispatched. */
  acceptsAhead(portId: number): number
  /**
   * Takes out of the batch being dispatched the input records of `ids` still ahead (a relay sends
   * those bytes on itself); their descriptors are closed. Bytes by id, in order.
   */
  takeInputAhead(ids: number[]): Map<number, Buffer[]>
  /** Calls `entry.flushReceived()` once the batch being dispatched is done. */
  flushAfterBatch(entry: BatchHook): void
}
