// The binding's surface as the TypeScript layer uses it. The Rust side lives in
// crates/node; this file is the single place that knows the wire format of a batch.
import { createRequire } from 'node:module'
import * as path from 'node:path'

/** Kinds of records in a batch's `events` array (stride EVENT_STRIDE: [kind, id, a, b]). */
export const EV_ACCEPT = 1 // id = listening port; a = new connection id; b = offset of the peer's address record in data
export const EV_DATA = 2 // id = connection; a = offset; b = length
export const EV_EOF = 3 // id = connection: the peer sent FIN; the core stopped reading it (the write side stays open)
export const EV_CLOSED = 4 // id = connection: the core closed it; a = errno (0: orderly, after a loseConnection flush)
export const EV_DRAINED = 5 // id = connection: its write queue became empty (sent only after a write was queued)
export const EV_WRITE_CLOSED = 6 // id = connection: FIN sent after shutdownWrite() waited for the queue to drain
export const EV_DATAGRAM = 7 // id = datagram port; a = offset of the sender's address record; b = payload length (payload follows the record)
export const EV_DATAGRAM_ERROR = 8 // id = datagram port; a = errno reported by a receive (e.g. ECONNREFUSED)
export const EV_DATA_CHUNK = 9 // id = connection; a = index into batch.chunks; b = length (a large read in its own buffer)
export const EVENT_STRIDE = 4

/**
 * Address record, as found in a batch's data and as returned by localAddress/peerAddress:
 *   u8 family (AF_INET 2, AF_INET6 10, AF_UNIX 1), u8 hostLength, u16 port (LE),
 *   u32 flowInfo (LE), u32 scopeId (LE), then hostLength bytes of host text:
 *   INET "127.0.0.1"; INET6 "::1" or "fe80::1%eth0"; UNIX the path in UTF-8 (abstract names
 *   start with "\0"; length 0 means an unnamed socket).
 */
export const ADDRESS_RECORD_HEADER = 12

/** takeBatch writes `[records, chunks]` then the records into the caller's array. */
export const BATCH_HEADER = 2
/** `records` when the batch did not fit the caller's array (take them with takeOverflowEvents). */
export const RECORDS_OVERFLOW = 0xffffffff

/** What an adopt call returns: `id` on success, otherwise `error` (an errno code such as 'EBADF',
 *  or 'ERR_SOCKET_TYPE' with socketType, or 'ERR_ADDRESS_FAMILY' with actualFamily, or 'EINVAL' for
 *  a stream port that is not listening, 'ENOTCONN' for a connection that is not connected). */
export interface AdoptResult {
  id?: number
  error?: string
  errno?: number
  socketType?: number
  actualFamily?: number
}

export interface SocketInfo {
  family: number
  type: number
  listening: boolean
  nonBlocking: boolean
  local: Buffer | null
  peer: Buffer | null
}

export interface NativeReactor {
  /** Validates and adopts (duplicating the fd); starts the poller and I/O thread on first success. */
  adoptListener(fd: number, family: number): AdoptResult
  adoptConnection(fd: number, family: number): AdoptResult
  adoptDatagram(fd: number, family: number, maxPacketSize: number): AdoptResult
  /** Next pending batch: its records go into `events` after a header [records, chunks]; its data
   *  comes back as a fresh Buffer. null when there is none (the next `onReady` announces more). */
  takeBatch(events: Uint32Array): Buffer | null
  takeOverflowEvents(): Uint32Array
  /** The large reads of the batch last taken (EV_DATA_CHUNK records index into them). */
  takeChunks(): Buffer[]
  /** Writes (inline when nothing is queued); returns bytes still queued. 0 for a closed id. */
  write(id: number, data: Uint8Array): number
  writev(id: number, chunks: Uint8Array[]): number
  bufferSize(id: number): number
  pauseReading(id: number): void
  resumeReading(id: number): void
  /** true: shut down and closed now. false: closes after the queue drains (then EV_CLOSED). */
  loseConnection(id: number): boolean
  /** true: FIN sent now. false: sent after the queue drains (then EV_WRITE_CLOSED). */
  shutdownWrite(id: number): boolean
  /** SO_LINGER 0, shutdown, close: now. Queued data is discarded. */
  abort(id: number): void
  /** Deregister and close the duplicate, without shutdown: stops a port, or lets go of a
   *  connection (queued bytes are discarded; the caller's fd still holds it). For a listening port,
   *  returns how many connections it accepted that are still to be delivered (EV_ACCEPT). */
  closePort(id: number): number
  localAddress(id: number): Buffer | null
  peerAddress(id: number): Buffer | null
  setNoDelay(id: number, on: boolean): void
  getNoDelay(id: number): boolean
  setKeepAlive(id: number, on: boolean): void
  getKeepAlive(id: number): boolean
  // Datagram ports. Errors thrown carry `code`: 'ERR_INVALID_ADDRESS' for a host that is not an IP
  // literal of the port's family, 'EMSGSIZE', 'EISCONN', 'ECONNREFUSED', ...
  sendTo(id: number, data: Uint8Array, host: string, port: number): void
  send(id: number, data: Uint8Array): void
  connect(id: number, host: string, port: number): void
  setBroadcast(id: number, on: boolean): void
  getBroadcast(id: number): boolean
  joinGroup(id: number, group: string, iface?: string | null): void
  leaveGroup(id: number, group: string, iface?: string | null): void
  setTtl(id: number, ttl: number): void
  getTtl(id: number): number
  setLoopback(id: number, on: boolean): void
  getLoopback(id: number): boolean
  setOutgoingInterface(id: number, addr: string): void
  getOutgoingInterface(id: number): string
  droppedDatagrams(id: number): number
  /** Hold / release Node's event loop (JS counts its ref'd handles and calls these on 0↔1). */
  ref(): void
  unref(): void
  /** Stops the I/O thread and closes every socket the core still holds. Idempotent. */
  close(): void
}

export interface NativeSockets {
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean, ipv6Only: boolean | null): number
  bindUdp(host: string, port: number, reusePort: boolean): number
  listenUnix(path: string, backlog: number): number
  connectTcp(host: string, port: number): number
  socketPair(): number[]
  close(fd: number): void
  info(fd: number): SocketInfo
}

export interface NativeBinding {
  /** thread: true (default) runs the loop on an I/O thread; false lets Node's loop drive it (uv_poll). */
  NativeReactor: new (onReady: () => void, thread?: boolean) => NativeReactor
  sockets: NativeSockets
}

const requireNative = createRequire(__filename)
export const binding: NativeBinding = requireNative(path.join(__dirname, '..', 'native', 'binding.js'))

// ---------------------------------------------------------------------------------------------
// Deployment: systemd and handoff (crates/node/src/systemd.rs, handoff.rs). Kept as a separate
// block that merges into NativeBinding above.

export interface NativeListenFd {
  fd: number
  name: string
  /** 0 for a descriptor that is not a socket. */
  family: number
  type: number
  listening: boolean
}

export interface NativeSystemd {
  /** The values of LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES (null when unset). Throws EINVAL/EBADF. */
  listenFds(pid: string | null, fds: string | null, names: string | null): NativeListenFd[]
  notify(notifySocket: string, state: string, fds: number[]): void
  /** WATCHDOG_USEC, WATCHDOG_PID → microseconds, or null. Throws EINVAL. */
  watchdogUsec(usec: string | null, pid: string | null): number | null
}

/** The connection a taker confirms readiness on (an opaque native handle). */
export type NativeHandoffControl = object

/** How a background handoff step ended: `code` set on failure (errno positive). */
export interface NativeHandoffOutcome {
  code?: string | null
  errno?: number | null
  message?: string | null
  listeners?: NativeListenFd[] | null
  control?: NativeHandoffControl | null
}

export interface NativeOffer {
  close(): void
}

export interface NativeHandoff {
  offer(
    path: string,
    names: string[],
    fds: number[],
    allowUids: number[],
    onDone: (outcome: NativeHandoffOutcome) => void,
  ): NativeOffer
  /** timeoutMs < 0: no deadline. */
  take(path: string, timeoutMs: number, onDone: (outcome: NativeHandoffOutcome) => void): void
  ready(control: NativeHandoffControl, timeoutMs: number, onDone: (outcome: NativeHandoffOutcome) => void): void
}

export interface NativeBinding {
  systemd: NativeSystemd
  handoff: NativeHandoff
}
