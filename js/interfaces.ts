// The shapes of what the reactor calls and what it hands out (Twisted's interfaces, as TS types).
import type { Address, IPAddress } from './address'
import type { ConnectionAborted, ConnectionDone, ConnectionLost, TLSError } from './errors'
import type { ProxyInfo } from './proxy-info'
import type { TlsClientOptions, TlsInfo, TlsServerOptions } from './tls-types'
import type { SocketOptionName, SocketOptionValues } from './socket-option-names'

/** Something that produces data for a consumer until told to stop. */
export interface IProducer {
  /** Stop for good: the consumer will take no more data (its connection is gone or closing). */
  stopProducing(): void
}

/** A producer that writes on its own and is paused/resumed by the consumer (`streaming === true`). */
export interface IPushProducer extends IProducer {
  /** Stop writing for now: the consumer's buffer is full. */
  pauseProducing(): void
  /** Write again: the consumer's buffer has drained. */
  resumeProducing(): void
}

/** A producer that writes one chunk per `resumeProducing()` call (`streaming === false`). */
export interface IPullProducer extends IProducer {
  /** Write the next chunk: the consumer wants more data. */
  resumeProducing(): void
}

/**
 * What `connectionLost` receives: a `ConnectionDone` for an orderly close (the peer's EOF, our
 * `loseConnection()`); a `ConnectionLost` otherwise, with `code` when a syscall said why
 * (`ConnectionAborted` after our `abortConnection()` or `reactor.close()`, `TLSError` when the TLS
 * session failed); or, when a callback of the protocol threw, the error it threw (an `Error` made of
 * it when it was not one).
 */
export type ConnectionLostReason = ConnectionDone | ConnectionLost | ConnectionAborted | TLSError | Error

/**
 * A stream connection's transport, as `protocol.transport`. `Host` and `Peer` are the address
 * classes `getHost()` and `getPeer()` give; a protocol that knows its connections' family says so
 * (`class Echo extends Protocol<IPAddress>`), see `Protocol`.
 */
export interface IStreamTransport<Host extends Address = Address, Peer extends Address = Host> extends IPushProducer {
  /** The PROXY header the connection began with (a port adopted with `proxyProtocol`), else null. */
  readonly proxyInfo: ProxyInfo | null
  /** The TLS session's parameters (a TLS port, a connect with TLS, after startTLS), else null. */
  readonly tlsInfo: TlsInfo | null
  /** Twisted's ITLSTransport.startTLS (see StreamTransport.startTLS). */
  startTLS(options: TlsServerOptions | TlsClientOptions, how?: { server?: boolean }): void
  /** True until the connection is lost. */
  readonly connected: boolean
  /** True once `loseConnection()` was called (the connection flushes, then closes). */
  readonly disconnecting: boolean
  /** Bytes `write` accepted that the kernel has not taken yet. */
  readonly bufferSize: number
  /** Queues `data` for the peer (a string is sent as UTF-8); never blocks. */
  write(data: Uint8Array | string): void
  /** Queues the chunks for the peer, in order, as one write. */
  writeSequence(chunks: Iterable<Uint8Array | string>): void
  /** Stops reading, flushes what was written, then closes; `connectionLost(ConnectionDone)` follows. */
  loseConnection(): void
  /** Sends FIN once pending data is written (a half-close); the protocol can still read. */
  loseWriteConnection(): void
  /** Discards pending data and closes now; `connectionLost(ConnectionAborted)` follows. */
  abortConnection(): void
  /** UNIX connections: sends a duplicate of `fd` with the first byte of the next `write()`. */
  sendFileDescriptor(fd: number): void
  /** This end's address. */
  getHost(): Host
  /** The peer's address; on a port that reads PROXY headers, the client the header names (of any family). */
  getPeer(): Peer
  /** TCP_NODELAY on (true) or off: whether small writes go out without waiting (no Nagle delay). */
  setTcpNoDelay(on: boolean): void
  /** Whether TCP_NODELAY is on. */
  getTcpNoDelay(): boolean
  /** SO_KEEPALIVE on (true) or off: TCP keepalive probes on an idle connection. */
  setTcpKeepAlive(on: boolean): void
  /** Whether SO_KEEPALIVE is on. */
  getTcpKeepAlive(): boolean
  /** Sets a socket option by name (`SocketOption`); the kernel's errno where it does not apply. */
  setOption<N extends SocketOptionName>(name: N, value: SocketOptionValues[N]): void
  /** A socket option as the kernel reports it. */
  getOption<N extends SocketOptionName>(name: N): SocketOptionValues[N]
  /**
   * Makes `producer` write into this connection under flow control: a streaming (push) producer is
   * paused when the write buffer fills and resumed when it drains; a pull producer's
   * `resumeProducing()` is called each time more data is wanted. Both are stopped when the
   * connection is lost.
   */
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void
  /** Forgets the registered producer (call it when the producer has finished). */
  unregisterProducer(): void
  /** Keeps the process alive while this connection is open (the default). */
  ref(): this
  /** Lets the process exit even while this connection is open. */
  unref(): this
}

/** What the reactor needs of a stream protocol (`Host`, `Peer`: as for IStreamTransport). */
export interface IProtocol<Host extends Address = Address, Peer extends Address = Host> {
  /** Called once with the connection's transport, before any other callback. */
  makeConnection(transport: IStreamTransport<Host, Peer>): void
  /** Bytes from the peer, in order (chunk boundaries carry no meaning). */
  dataReceived(data: Buffer): void
  /** Called once, last: why the connection ended (`ConnectionDone` for a clean close). */
  connectionLost(reason: ConnectionLostReason): void
  /** Defining this opts into half-close: called on the peer's EOF instead of closing. */
  readConnectionLost?(): void
  /** Called once our FIN went out after `loseWriteConnection()`. */
  writeConnectionLost?(): void
  /** After `transport.startTLS()`: the handshake completed (`transport.tlsInfo` is set). Bytes
   *  the peer sent after it arrive after this call. (Twisted users know the same moment from
   *  IHandshakeListener.handshakeCompleted.) */
  handshakeCompleted?(): void
  /** UNIX connections: a descriptor the peer sent (SCM_RIGHTS), before the data it came with. The
   *  protocol owns it (close-on-exec). Without this method, received descriptors are closed. */
  fileDescriptorReceived?(fd: number): void
}

/** Any object with `buildProtocol` is a factory; `doStart`/`doStop` are called when present (ports only). */
export interface IProtocolFactory<P extends IProtocol = IProtocol> {
  /** A protocol for a new connection from `addr`; null or undefined refuses it (it is closed). */
  buildProtocol(addr: Address): P | null | undefined
  /** Called when a port starts using this factory. */
  doStart?(): void
  /** Called when a port that used this factory has stopped. */
  doStop?(): void
}

/** A datagram port, as `protocol.transport`. */
export interface IDatagramTransport {
  /** Sends one datagram to `addr` (`[host, port]`); `addr` may be omitted only when the port is connected. */
  write(packet: Uint8Array | string, addr?: readonly [host: string, port: number]): void
  /** Sends the chunks as one datagram. */
  writeSequence(chunks: Iterable<Uint8Array | string>, addr?: readonly [host: string, port: number]): void
  /** Connects the port to one peer: later writes may omit the address, and refusals are reported. */
  connect(host: string, port: number): void
  /** The bound address. */
  getHost(): IPAddress
  /** Stops receiving; resolves after the protocol's `doStop` ran, on a later turn. */
  stopListening(): Promise<void>
  /** A new close-on-exec descriptor of the socket, owned by the caller. */
  duplicateFd(): number
  /** SO_BROADCAST on (true) or off: whether sends to a broadcast address are allowed. */
  setBroadcastAllowed(on: boolean): void
  /** Whether SO_BROADCAST is on. */
  getBroadcastAllowed(): boolean
  /**
   * Joins multicast group `addr` on interface `iface` (IPv4: an address of the interface; IPv6: its
   * name, index, or an address with `%scope`), or on the kernel's choice when absent.
   */
  joinGroup(addr: string, iface?: string): void
  /** Leaves multicast group `addr` (joined on `iface`, given as to `joinGroup`). */
  leaveGroup(addr: string, iface?: string): void
  /** The TTL (hop limit) of outgoing multicast datagrams, 0 to 255. */
  setTTL(ttl: number): void
  /** The TTL (hop limit) of outgoing multicast datagrams. */
  getTTL(): number
  /** Whether this host's own multicast datagrams are looped back to it (true) or not. */
  setLoopbackMode(on: boolean): void
  /** Whether multicast loopback is on. */
  getLoopbackMode(): boolean
  /** The interface outgoing multicast datagrams leave by (IPv4: an address of it; IPv6: its name or index). */
  setOutgoingInterface(addr: string): void
  /** The interface outgoing multicast datagrams leave by (IPv4: its address; IPv6: its index). */
  getOutgoingInterface(): string
  /** Datagrams the core had to drop (its queue to JS was full). */
  readonly droppedDatagrams: number
  /** Keeps the process alive while this port is open (the default). */
  ref(): this
  /** Lets the process exit even while this port is open. */
  unref(): this
}

/** One datagram as given to `datagramsReceived`. */
export interface ReceivedDatagram {
  /** The datagram's bytes (truncated to the port's `maxPacketSize`). */
  data: Buffer
  /** The sender's address. */
  addr: IPAddress
}

/** What the reactor needs of a datagram protocol (DatagramProtocol provides all of it). */
export interface IDatagramProtocol {
  /** Sets `transport` and starts the protocol (`doStart` → `startProtocol`). */
  makeConnection(transport: IDatagramTransport): void
  /** Stops the protocol (`stopProtocol` on the last port) and clears `transport`. */
  doStop(): void
  /** One datagram from `addr`. */
  datagramReceived(data: Buffer, addr: IPAddress): void
  /**
   * Optional batch hook: when defined, it is called instead of `datagramReceived`, once per batch
   * the core delivers, with every datagram of that batch for this port, in arrival order. Saves a
   * call per datagram for protocols that process datagrams in bulk.
   */
  datagramsReceived?(datagrams: ReceivedDatagram[]): void
  /** Called in connected mode when the kernel reports a refusal. */
  connectionRefused?(): void
}
