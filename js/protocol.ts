// Base classes users extend, as in Twisted: Protocol, ServerFactory, DatagramProtocol.
import type { Address, IPAddress } from './address'
import type { ConnectionLostReason, IDatagramProtocol, IDatagramTransport, IProtocol, IProtocolFactory, IStreamTransport } from './interfaces'
import { SocketStream, type SocketStreamOptions, type SocketStreamProtocol } from './stream'
import { functionArgument, optionsArgument } from './validate'

/**
 * A stream protocol. Subclass it and override the callbacks. It deliberately has no
 * `readConnectionLost` / `writeConnectionLost`: defining them opts into half-close.
 *
 * `Host` and `Peer` are the address classes of `transport.getHost()` / `getPeer()`: any `Address` by
 * default; a protocol only used on TCP says `Protocol<IPAddress>` (then `getPeer().host` needs no
 * check), one only used on UNIX sockets `Protocol<UNIXAddress>`. On a port that reads PROXY headers
 * the peer is the client the header names, which may be of another family than the port's.
 */
export class Protocol<Host extends Address = Address, Peer extends Address = Host> implements IProtocol<Host, Peer> {
  /**
   * Set by `makeConnection`, before any other callback runs (so typed as always present; it is
   * undefined before that).
   */
  transport!: IStreamTransport<Host, Peer>
  /** Set by `ServerFactory.buildProtocol`. */
  factory: IProtocolFactory | null = null
  /** True from `makeConnection` on. */
  connected = false

  /** Sets `transport` and `connected`, then calls `connectionMade()`. */
  makeConnection(transport: IStreamTransport<Host, Peer>): void {
    this.connected = true
    this.transport = transport
    this.connectionMade()
  }

  /** Called once the connection is made and `transport` is set: override it to start talking. */
  connectionMade(): void {}

  /** Bytes from the peer, in order (chunk boundaries carry no meaning). Override it. */
  dataReceived(_data: Buffer): void {}

  /** Called once, last: why the connection ended (`ConnectionDone` for a clean close). Override it. */
  connectionLost(_reason: ConnectionLostReason): void {}
}

/** A Protocol subclass that `ServerFactory` can construct (`new P()`, no arguments). */
export type ProtocolClass<P extends Protocol = Protocol> = new () => P

/**
 * A factory for stream protocols. `buildProtocol` makes `new this.protocol()`; `doStart`/`doStop`
 * count the ports that use the factory and call `startFactory` / `stopFactory` on the first and last.
 * `P` is the protocol class it builds (what `connectTCP` and `adoptStreamConnection` give back):
 * `ServerFactory.forProtocol(Echo)` is a `ServerFactory<Echo>`; a subclass that sets `protocol`
 * says so with `class EchoFactory extends ServerFactory<Echo> { override protocol = Echo }`.
 */
export class ServerFactory<P extends Protocol = Protocol> implements IProtocolFactory<P> {
  /** The class `buildProtocol` instantiates (the base `Protocol` until set: a factory typed with a
   *  subclass must set it). */
  protocol: ProtocolClass<P> = Protocol as unknown as ProtocolClass<P>
  /** How many ports are using this factory. */
  numPorts = 0

  /**
   * A factory whose `protocol` is `protocol`: a `ServerFactory<P>`, or, called on a subclass of
   * ServerFactory (`MyFactory.forProtocol(Echo)`), an instance of that subclass.
   */
  static forProtocol<P extends Protocol, F extends ServerFactory<any>>(
    this: new () => F,
    protocol: ProtocolClass<P>,
  ): ServerFactory extends F ? ServerFactory<P> : F {
    const factory = new this()
    factory.protocol = protocol
    return factory as ServerFactory extends F ? ServerFactory<P> : F
  }

  /**
   * A factory that wraps each new connection (accepted, adopted or connected) in a `SocketStream`
   * and calls `listener(stream)` once the connection is made, e.g. to hand it to Node's http:
   * `ServerFactory.forStreams((stream) => httpServer.emit('connection', stream))`.
   */
  static forStreams(listener: (stream: SocketStream) => void, options?: SocketStreamOptions): StreamServerFactory {
    return new StreamServerFactory(listener, options)
  }

  /** `new this.protocol()`, with its `factory` set to this factory. Override it to refuse (null) or pick by address. */
  buildProtocol(_addr: Address): P | null | undefined {
    const protocol = new this.protocol()
    protocol.factory = this
    return protocol
  }

  /** A port started using this factory: `startFactory()` on the first, then counts it. */
  doStart(): void {
    // As in Twisted: the count goes up only once startFactory succeeded.
    if (this.numPorts === 0) this.startFactory()
    this.numPorts++
  }

  /** A port that used this factory stopped: `stopFactory()` after the last. */
  doStop(): void {
    if (this.numPorts === 0) return
    this.numPorts--
    if (this.numPorts === 0) this.stopFactory()
  }

  /** Called when the first port starts using this factory: override it to set up shared state. */
  startFactory(): void {}

  /** Called when the last port using this factory has stopped: override it to release shared state. */
  stopFactory(): void {}
}

/** What `ServerFactory.forStreams` makes: each protocol it builds is a new `SocketStream`'s. */
export class StreamServerFactory extends ServerFactory<SocketStreamProtocol> {
  constructor(
    private readonly listener: (stream: SocketStream) => void,
    private readonly options: SocketStreamOptions = {},
  ) {
    super()
    functionArgument(listener, 'ServerFactory.forStreams: listener')
    optionsArgument(options, 'ServerFactory.forStreams: options')
  }

  override buildProtocol(_addr: Address): SocketStreamProtocol {
    const protocol = SocketStream.withListener(this.listener, this.options).protocol
    protocol.factory = this
    return protocol
  }
}

/**
 * A datagram protocol. Counts its ports like a factory: `startProtocol` on the first, `stopProtocol`
 * on the last; `transport` is cleared after `stopProtocol` (so `stopProtocol` can still use it).
 */
export class DatagramProtocol implements IDatagramProtocol {
  /**
   * The port, set by `makeConnection` before `startProtocol` (so typed as always present; it is
   * undefined before that and null once `doStop` cleared it).
   */
  transport!: IDatagramTransport
  /** How many ports are using this protocol. */
  numPorts = 0

  makeConnection(transport: IDatagramTransport): void {
    this.transport = transport
    this.doStart()
  }

  /** A port started using this protocol: `startProtocol()` on the first, then counts it. */
  doStart(): void {
    if (this.numPorts === 0) this.startProtocol()
    this.numPorts++
  }

  doStop(): void {
    if (this.numPorts === 0) return
    this.numPorts--
    try {
      if (this.numPorts === 0) this.stopProtocol()
    } finally {
      ;(this as { transport: IDatagramTransport | null }).transport = null
    }
  }

  /** Called when the first port starts using this protocol (`transport` is set): override it. */
  startProtocol(): void {}

  /** Called when the last port using this protocol has stopped (`transport` still set): override it. */
  stopProtocol(): void {}

  /**
   * One datagram from `addr`. Override it (or define `datagramsReceived` to take whole batches).
   * `data` is yours to keep and change: a view into the buffer of the batch it came in, which the
   * core never reuses (keeping it keeps that buffer alive; `Buffer.from(data)` copies it out).
   */
  datagramReceived(_data: Buffer, _addr: IPAddress): void {}

  /** Connected mode only: the kernel reported that the peer refused a datagram. */
  connectionRefused(): void {}
}
