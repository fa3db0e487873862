// A datagram port (UDP over IPv4 or IPv6): Twisted's udp.Port, the transport of a DatagramProtocol.
import { constants } from 'node:os'
import { decodeRecord, SenderAddressCache, type IPAddress } from './address'
import { callNative, codeOf, errnoError, InvalidAddressError, nativeError } from './errors'
import { Handle, nextTurn } from './handle'
import type { DatagramEntry, ReactorHost } from './host'
import type { DatagramFamily } from './constants'
import type { IDatagramProtocol, IDatagramTransport, ReceivedDatagram } from './interfaces'
import type { NativeReactor } from './native'
import type { Batch } from './records'
import { byteChunksArgument, bytesArgument, integerArgument, isPort, stringArgument } from './validate'

/** `[host, port]`: host an IP literal of the port's family. */
export type DatagramAddress = readonly [host: string, port: number]

const ECONNREFUSED = constants.errno.ECONNREFUSED

/** A datagram port, as `adoptDatagramPort` returns it and `protocol.transport` holds it; `A` is
 *  the class of its address (`getHost()`), by its family:
 *  `adoptDatagramPort(fd, AddressFamily.INET6, p)` gives a `DatagramPort<IPv6Address>`. */
export class DatagramPort<A extends IPAddress = IPAddress> extends Handle implements IDatagramTransport, DatagramEntry {
  private listening = true
  private connectedTo: DatagramAddress | null = null
  private stopped: Promise<void> | null = null
  /** Set when the adopt call is undone: `doStop` must not follow. */
  private abandoned = false
  private readonly senders = new SenderAddressCache()
  /** Datagrams of the current batch, for a protocol with the `datagramsReceived` batch hook. */
  private received: ReceivedDatagram[] = []
  private lastDropped = 0
  /**
   * The address of the last `sendTo` that returned normally; the core keeps it too, so replies to
   * the same peer (the common case) go without passing the host string again (`sendAgain`).
   */
  private lastSentHost: string | null = null
  private lastSentPort = 0

  /** @internal Made by the reactor. */
  constructor(
    host: ReactorHost,
    id: number,
    /** The socket's address family (`AddressFamily.INET` or `INET6`). */
    readonly family: DatagramFamily,
    /** The protocol that receives this port's datagrams. */
    readonly protocol: IDatagramProtocol,
    /** Longer datagrams are delivered truncated to this many bytes. */
    readonly maxPacketSize: number,
    /** Kept so that `getHost()` still answers after the stop. */
    private lastHost: A,
  ) {
    super(host, id, 'datagram')
    host.register('datagram', id, this)
  }

  // ---- Sending -------------------------------------------------------------------------------

  /** Sends one datagram; `addr` may be omitted only when the port is connected. */
  write(packet: Uint8Array | string, addr?: DatagramAddress): void {
    this.send(bytesArgument(packet, 'write'), addr)
  }

  /** Sends the chunks as one datagram. */
  writeSequence(chunks: Iterable<Uint8Array | string>, addr?: DatagramAddress): void {
    this.send(Buffer.concat(byteChunksArgument(chunks, 'writeSequence')), addr)
  }

  private send(packet: Uint8Array, addr: DatagramAddress | undefined | null): void {
    this.checkListening('write')
    if (addr === undefined || addr === null) {
      if (this.connectedTo === null) {
        throw new InvalidAddressError('write: an address is required unless the port is connected')
      }
      try {
        this.host.native.send(this.id, packet)
      } catch (err) {
        this.sendFailed(err, addr)
      }
      return
    }
    const [host, port] = checkAddress(addr, 'write')
    try {
      if (host === this.lastSentHost && port === this.lastSentPort) {
        this.host.native.sendAgain(this.id, packet)
      } else {
        this.lastSentHost = null // the core's record of the last address changes with this call
        this.host.native.sendTo(this.id, packet, host, port)
        this.lastSentHost = host
        this.lastSentPort = port
      }
    } catch (err) {
      this.lastSentHost = null
      this.sendFailed(err, addr)
    }
  }

  /** Maps a failed send as Twisted does. */
  private sendFailed(err: unknown, addr: unknown): void {
    const failure = nativeError(err, addr ?? this.connectedTo ?? undefined) // InvalidAddressError, MessageLengthError, ...
    switch (codeOf(failure)) {
      case 'ECONNREFUSED':
        // A refusal reported on a later send. Unconnected ports ignore it (Twisted does too).
        if (this.connectedTo !== null) this.protocol.connectionRefused?.()
        return
      case 'EAGAIN':
      case 'EWOULDBLOCK':
      case 'ENOBUFS':
        return // the socket's send buffer is full: the datagram is dropped, as UDP may do
      default:
        throw failure
    }
  }

  /** Connects the port to one peer: later writes may omit the address; refusals are reported. */
  connect(host: string, port: number): void {
    this.checkListening('connect')
    if (this.connectedTo !== null) {
      throw errnoError('EISCONN', 'connect: the port is already connected; reconnecting is not supported')
    }
    const addr = checkAddress([host, port], 'connect')
    callNative(() => this.host.native.connect(this.id, addr[0], addr[1]), addr)
    this.connectedTo = addr
  }

  // ---- State ---------------------------------------------------------------------------------

  /** The bound address (port 0 while an unbound socket has not sent yet). */
  getHost(): A {
    if (this.listening) {
      const host = decodeRecord(this.host.native.localAddress(this.id), 'UDP')
      if (host !== null) this.lastHost = host as A // of the socket's family, as the first
    }
    return this.lastHost
  }

  /** A new close-on-exec descriptor of the socket, owned by the caller (see
   *  ListeningPort.duplicateFd): 'EBADF' once stopped. */
  duplicateFd(): number {
    return this.duplicateSocket('duplicateFd', this.listening)
  }

  /** Datagrams the core had to drop (its queue to JS was full). */
  get droppedDatagrams(): number {
    return this.listening ? this.host.native.droppedDatagrams(this.id) : this.lastDropped
  }

  /**
   * Closes the reactor's duplicate now (no shutdown: a caller's fd still receives), then on a later
   * turn runs the protocol's `doStop` (→ `stopProtocol`) and resolves. Every call resolves, each on a
   * later turn; never re-entrant, even when called inside `startProtocol`.
   */
  stopListening(): Promise<void> {
    if (this.stopped !== null) return this.stopped.then(nextTurn)
    this.close()
    this.stopped = nextTurn().then(() => this.runDoStop())
    return this.stopped
  }

  // ---- Options -------------------------------------------------------------------------------

  setBroadcastAllowed(on: boolean): void {
    this.option('setBroadcastAllowed', (native, id) => native.setBroadcast(id, Boolean(on)))
  }

  getBroadcastAllowed(): boolean {
    return this.option('getBroadcastAllowed', (native, id) => native.getBroadcast(id))
  }

  joinGroup(addr: string, iface?: string): void {
    stringArgument(addr, 'joinGroup: addr')
    if (iface !== undefined && iface !== null) stringArgument(iface, 'joinGroup: iface')
    this.option('joinGroup', (native, id) => native.joinGroup(id, addr, iface ?? null))
  }

  leaveGroup(addr: string, iface?: string): void {
    stringArgument(addr, 'leaveGroup: addr')
    if (iface !== undefined && iface !== null) stringArgument(iface, 'leaveGroup: iface')
    this.option('leaveGroup', (native, id) => native.leaveGroup(id, addr, iface ?? null))
  }

  setTTL(ttl: number): void {
    integerArgument(ttl, 'setTTL: ttl', 0, 255)
    this.option('setTTL', (native, id) => native.setTtl(id, ttl))
  }

  getTTL(): number {
    return this.option('getTTL', (native, id) => native.getTtl(id))
  }

  setLoopbackMode(on: boolean): void {
    this.option('setLoopbackMode', (native, id) => native.setLoopback(id, Boolean(on)))
  }

  getLoopbackMode(): boolean {
    return this.option('getLoopbackMode', (native, id) => native.getLoopback(id))
  }

  setOutgoingInterface(addr: string): void {
    stringArgument(addr, 'setOutgoingInterface: addr')
    this.option('setOutgoingInterface', (native, id) => native.setOutgoingInterface(id, addr))
  }

  getOutgoingInterface(): string {
    return this.option('getOutgoingInterface', (native, id) => native.getOutgoingInterface(id))
  }

  /** Runs a socket-option call; failures are Errors with `code` (InvalidAddressError for addresses). */
  private option<T>(method: string, call: (native: NativeReactor, id: number) => T): T {
    this.checkListening(method)
    return callNative(() => call(this.host.native, this.id))
  }

  private checkListening(method: string): void {
    if (!this.listening) throw errnoError('EBADF', `${method}: the port is not listening`)
  }

  // ---- Events from the core (called by the reactor's dispatch) -------------------------------

  /** @internal EV_DATAGRAM: the datagram at `at` in `batch`. */
  onDatagram(batch: Batch, at: number): void {
    const addr = batch.sender(at, this.senders)
    const payload = batch.datagram(at)
    if (this.protocol.datagramsReceived !== undefined) {
      if (this.received.length === 0) this.host.flushAfterBatch(this)
      this.received.push({ data: payload, addr })
      return
    }
    try {
      this.protocol.datagramReceived(payload, addr)
    } catch (err) {
      this.host.report(err) // the port keeps receiving
    }
  }

  /** @internal End of a batch: hands what arrived to the batch hook in one call. */
  flushReceived(): void {
    const datagrams = this.received
    if (datagrams.length === 0) return
    this.received = []
    if (!this.listening) return
    try {
      this.protocol.datagramsReceived?.(datagrams)
    } catch (err) {
      this.host.report(err) // the port keeps receiving
    }
  }

  /** @internal EV_DATAGRAM_ERROR: a receive reported `errno`. */
  onDatagramError(errno: number): void {
    // Only a refusal means something to the protocol, and only in connected mode (Twisted's rule);
    // other receive errors are transient for a datagram socket.
    if (errno !== ECONNREFUSED || this.connectedTo === null) return
    try {
      this.protocol.connectionRefused?.()
    } catch (err) {
      this.host.report(err)
    }
  }

  /**
   * @internal Undoes the adoption when `startProtocol` threw inside the adopt call: closes the
   * duplicate; no `stopProtocol` follows, and the protocol's transport is cleared.
   */
  abandon(): void {
    this.abandoned = true
    this.close()
    const protocol = this.protocol as { transport?: unknown }
    if (protocol.transport === this) protocol.transport = null
  }

  private close(): void {
    if (!this.listening) return
    this.listening = false
    this.lastDropped = this.host.native.droppedDatagrams(this.id)
    this.host.native.closePort(this.id)
    this.detach()
  }

  private runDoStop(): void {
    if (this.abandoned) return
    try {
      this.protocol.doStop()
    } catch (err) {
      this.host.report(err)
    }
  }
}

/** Checks an `[host, port]` pair's shape; the core checks that host is an IP literal of our family.
 *  A malformed address is an InvalidAddressError (Twisted's rule for datagram addresses). */
function checkAddress(addr: unknown, method: string): DatagramAddress {
  if (Array.isArray(addr) && addr.length >= 2 && typeof addr[0] === 'string' && isPort(addr[1])) {
    return addr as unknown as DatagramAddress
  }
  throw new InvalidAddressError(`${method}: the address must be [host: string, port: 0..65535]`, addr)
}
