/**
 * reactor-socket: adopt socket descriptors made elsewhere (systemd, a parent process, a handoff)
 * into a Rust event loop, with Twisted's IReactorSocket semantics.
 *
 * Start at {@link Reactor} (the package's default one is {@link reactor}): its adopt methods take a
 * descriptor and a {@link Protocol} / {@link ServerFactory} / {@link DatagramProtocol}; descriptors
 * come from {@link systemd}, {@link handoff} or {@link sockets}. The package's README explains each
 * part with examples; this reference lists every exported name.
 *
 * @packageDocumentation
 */
import { Reactor } from './reactor'

/** The default reactor. Constructing it opens nothing; its core starts with the first adoption. */
export const reactor = new Reactor()

export { Reactor, type ReactorOptions } from './reactor'
export type { ReactorStats } from './stats'
export type { ConnectOptions } from './connect'
export type { RelayOptions, RelayResult } from './relay'
export { AddressFamily, SocketType, type DatagramFamily, type FamilyArgument } from './constants'
export { Protocol, ServerFactory, DatagramProtocol, StreamServerFactory, type ProtocolClass } from './protocol'
export { SocketStream, SocketStreamProtocol, type SocketStreamOptions, type SocketStreamEvents, type PeerCertificate } from './stream'
export {
  UnsupportedAddressFamily,
  UnsupportedSocketType,
  InvalidAddressError,
  MessageLengthError,
  ConnectionClosed,
  ConnectionDone,
  ConnectionLost,
  ConnectionAborted,
  ConnectError,
  TLSError,
  type ErrnoError,
} from './errors'
export { tlsSupport, type TlsServerOptions, type TlsClientOptions, type TlsInfo, type Pem } from './tls-options'
export {
  IPv4Address,
  IPv6Address,
  UNIXAddress,
  type Address,
  type AddressOf,
  type IPAddress,
  type IPAddressOf,
  type IPAddressType,
} from './address'
export { sockets, type SocketInfo, type ListenTcpOptions, type BindUdpOptions, type BufferSizes } from './sockets'
export { SocketOption, type SocketOptionName, type SocketOptionValues } from './socket-option-names'
export type { ListenUnixOptions } from './sockets'
export { systemd, type ListenFd, type ListenFdsOptions } from './systemd'
export {
  handoff,
  Offer,
  type HandoffListener,
  type OfferOptions,
  type TakeOptions,
  type Taken,
  type TakenListener,
} from './handoff'

// Classes of what adopt calls return (exported for `instanceof` and types; the reactor makes them).
export { ListeningPort, type PortStats, type DrainOptions } from './port'
export { ProxyPort } from './proxy-port'
export type {
  PortLimits,
  ProxyProtocolOptions,
  StreamPortOptions,
  ProxyPortOptions,
  UpstreamAddress,
  ProxyClient,
} from './port-options'
export type { ProxyHeaderOptions, ProxyEndpoint } from './proxy-header'
export type { ProxyInfo, ProxyTlv, ProxyTransport } from './proxy-info'
export type { DrainCounts } from './records'
export { DatagramPort, type DatagramAddress } from './datagram'
export {
  DatagramProxyPort,
  type DatagramProxyOptions,
  type DatagramProxyStats,
  type DatagramRouter,
  type DatagramUpstream,
} from './datagram-proxy-port'
export { StreamTransport } from './transport'
export type {
  IProducer,
  IPushProducer,
  IPullProducer,
  IStreamTransport,
  IProtocol,
  IProtocolFactory,
  ConnectionLostReason,
  IDatagramTransport,
  IDatagramProtocol,
  ReceivedDatagram,
} from './interfaces'
