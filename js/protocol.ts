// Base classes users extend, as in Twisted: Protocol, ServerFactory, DatagramProtocol.
import type { Address, IPAddress } from './address'
import type { IDatagramProtocol, IDatagramTransport, IProtocol, IProtocolFactory, IStreamTransport } from './interfaces'
import { SocketStream, type SocketStreamOptions, type SocketStreamProtocol } from './stream'
import { functionArgument, optionsArgument } from './validate'

/**
 * A stream protocol. Subclass it and override the callbacks. It deliberately has no
 * `readConnectionLost` / `writeConnectionLost`: defining them opts into half-close.
 */
export class Protocol implements IProtocol {
  /**
   * Set by `makeConnection`, before any other callback runs (so typed as always present; it is
   * undefined before that).
   */
  transport!: IStreamTransport
  /** Set by `ServerFactory.buildProtocol`. */
  factory: IProtocolFactory | null = null
  connected = false

  makeConnection(transport: IStreamTransport): void {
    this.connected = true
    this.transport = transport
    this.connectionMade()
  }

  connectionMade(): void {}

  dataReceived(_data: Buffer): void {}

  connectionLost(_reason: Error): void {}
}

export type ProtocolClass<P extends Protocol = Protocol> = new () => P

/**
 * A factory for stream protocols. `buildProtocol` makes `new this.protocol()`; `doStart`/`doStop`
 * count the ports that use the factory and call `startFactory` / `stopFactory` on the first and last.
 */
export class ServerFactory implements IProtocolFactory {
  protocol: ProtocolClass = Protocol
  /** How many ports are using this factory. */
  numPorts = 0

  /** A factory whose `protocol` is `protocol`. */
  static forProtocol<F extends ServerFactory>(this: new () => F, protocol: ProtocolClass): F {
    const factory = new this()
    factory.protocol = protocol
    return factory
  }

  /**
   * A factory that wraps each new connection (accepted, adopted or connected) in a `SocketStream`
   * and calls `listener(stream)` once the connection is made, e.g. to hand it to Node's http:
   * `ServerFactory.forStreams((stream) => httpServer.emit('connection', stream))`.
   */
  static forStreams(listener: (stream: SocketStream) => void, options?: SocketStreamOptions): StreamServerFactory {
    return new StreamServerFactory(listener, options)
  }

  buildProtocol(_addr: Address): Protocol | null | undefined {
    const protocol = new this.protocol()
    protocol.factory = this
    return protocol
  }

  doStart(): void {
    // As in Twisted: the count goes up only once startFactory succeeded.
    if (this.numPorts === 0) this.startFactory()
    this.numPorts++
  }

  doStop(): void {
    if (this.numPorts === 0) return
    this.numPorts--
    if (this.numPorts === 0) this.stopFactory()
  }

  startFactory(): void {}

  stopFactory(): void {}
}

/** What `ServerFactory.forStreams` makes: each protocol it builds is a new `SocketStream`'s. */
export class StreamServerFactory extends ServerFactory {
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
  numPorts = 0

  makeConnection(transport: IDatagramTransport): void {
    this.transport = transport
    this.doStart()
  }

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

  startProtocol(): void {}

  stopProtocol(): void {}

  datagramReceived(_data: Buffer, _addr: IPAddress): void {}

  /** Connected mode only: the kernel reported that the peer refused a datagram. */
  connectionRefused(): void {}
}
