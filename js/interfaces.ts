// The shapes of what the reactor calls and what it hands out (Twisted's interfaces, as TS types).
import type { Address, IPAddress } from './address'
import type { ConnectionAborted, ConnectionDone, ConnectionLost, TLSError } from './errors'
import type { ProxyInfo } from './proxy-info'
import type { TlsClientOptions, TlsInfo, TlsServerOptions } from './tls-types'
import type { SocketOptionName, SocketOptionValues } from './socket-option-names'

/** Something that produces data for a consumer until told to stop. */
export interface IProducer {
  stopProducing(): void
}

/** A producer that writes on its own and is paused/resumed by the consumer (`streaming === true`). */
export interface IPushProducer extends IProducer {
  pauseProducing(): void
  resumeProducing(): void
}

/** A producer that writes one chunk per `resumeProducing()` call (`streaming === false`). */
export interface IPullProducer extends IProducer {
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
  readonly connected: boolean
  readonly disconnecting: boolean
  /** Bytes `write` accepted that the kernel has not taken yet. */
  readonly bufferSize: number
  write(data: Uint8Array | string): void
  writeSequence(chunks: Iterable<Uint8Array | string>): void
  loseConnection(): void
  loseWriteConnection(): void
  abortConnection(): void
  /** UNIX connections: sends a duplicate of `fd` with the first byte of the next `write()`. */
  sendFileDescriptor(fd: number): void
  getHost(): Host
  /** The peer; on a port that reads PROXY headers, the client the header names (of any family). */
  getPeer(): Peer
  setTcpNoDelay(on: boolean): void
  getTcpNoDelay(): boolean
  setTcpKeepAlive(on: boolean): void
  getTcpKeepAlive(): boolean
  /** Sets a socket option by name (`SocketOption`); the kernel's errno where it does not apply. */
  setOption<N extends SocketOptionName>(name: N, value: SocketOptionValues[N]): void
  /** A socket option as the kernel reports it. */
  getOption<N extends SocketOptionName>(name: N): SocketOptionValues[N]
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void
  unregisterProducer(): void
  ref(): this
  unref(): this
}

/** What the reactor needs of a stream protocol (`Host`, `Peer`: as for IStreamTransport). */
export interface IProtocol<Host extends Address = Address, Peer extends Address = Host> {
  makeConnection(transport: IStreamTransport<Host, Peer>): void
  dataReceived(data: Buffer): void
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
  buildProtocol(addr: Address): P | null | undefined
  doStart?(): void
  doStop?(): void
}

/** A datagram port, as `protocol.transport`. */
export interface IDatagramTransport {
  write(packet: Uint8Array | string, addr?: readonly [host: string, port: number]): void
  writeSequence(chunks: Iterable<Uint8Array | string>, addr?: readonly [host: string, port: number]): void
  connect(host: string, port: number): void
  getHost(): IPAddress
  stopListening(): Promise<void>
  /** A new close-on-exec descriptor of the socket, owned by the caller. */
  duplicateFd(): number
  setBroadcastAllowed(on: boolean): void
  getBroadcastAllowed(): boolean
  joinGroup(addr: string, iface?: string): void
  leaveGroup(addr: string, iface?: string): void
  setTTL(ttl: number): void
  getTTL(): number
  setLoopbackMode(on: boolean): void
  getLoopbackMode(): boolean
  setOutgoingInterface(addr: string): void
  getOutgoingInterface(): string
  readonly droppedDatagrams: number
  ref(): this
  unref(): this
}

/** What the reactor needs of a datagram protocol (DatagramProtocol provides all of it). */
/** One datagram as given to `datagramsReceived`. */
export interface ReceivedDatagram {
  data: Buffer
  addr: IPAddress
}

export interface IDatagramProtocol {
  /** Sets `transport` and starts the protocol (`doStart` → `startProtocol`). */
  makeConnection(transport: IDatagramTransport): void
  /** Stops the protocol (`stopProtocol` on the last port) and clears `transport`. */
  doStop(): void
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
