// The public Reactor: Twisted's IReactorSocket (adoptStreamPort, adoptStreamConnection,
// adoptDatagramPort). It checks arguments in the contract's order, has the core validate and adopt,
// and undoes an adoption whose callbacks throw inside the adopt call.
import { constants as osConstants } from 'node:os'
import { decodeRecord, decodeSocketAddress, type Address, type AddressOf, type IPAddress, type IPAddressOf, type UNIXAddress } from './address'
import { AddressFamily, SocketType, type DatagramFamily, type FamilyArgument } from './constants'
import { ReactorCore, type ErrorReporter } from './core'
import { DatagramPort } from './datagram'
import { checkDatagramProxyOptions, DatagramProxyPort, type DatagramProxyOptions } from './datagram-proxy-port'
import { callNative, errnoError, errorFromErrno, invalidState, reactorClosed, UnsupportedAddressFamily, UnsupportedSocketType } from './errors'
import { establish } from './establish'
import { nextTurn } from './handle'
import type { IDatagramProtocol, IProtocol, IProtocolFactory, IStreamTransport } from './interfaces'
import { checkConnectArgs, PendingConnect, type ConnectOptions, type ConnectTarget } from './connect'
import { ActiveRelay, type RelayOptions, type RelayResult } from './relay'
import { binding, type AdoptResult, type NativeReactor } from './native'
import {
  ADOPT_CONNECTION,
  ADOPT_DATAGRAM,
  ADOPT_LISTENER,
  REFUSED_FAMILY,
  REFUSED_NOT_CONNECTED,
  REFUSED_NOT_LISTENING,
  REFUSED_SOCKET_TYPE,
} from './wire'
import { ListeningPort } from './port'
import { proxyPortOptions, streamPortOptions, type ProxyPortOptions, type StreamPortOptions } from './port-options'
import { ProxyPort } from './proxy-port'
import { noStats, statsOf, type ReactorStats } from './stats'
import {
  booleanArgument,
  datagramProtocolArgument,
  factoryArgument,
  familyArgument,
  fdArgument,
  fdInRange,
  functionArgument,
  integerArgument,
  optionsArgument,
} from './validate'

/** `new Reactor()`'s options. */
export interface ReactorOptions {
  /** Where exceptions thrown by protocol callbacks are reported (stderr by default). */
  onError?(err: unknown): void
  /** true (default): the core's loop runs on its own I/O thread. false: driven from Node's loop. */
  thread?: boolean | undefined
}

const STREAM_FAMILIES: readonly AddressFamily[] = [AddressFamily.INET, AddressFamily.INET6, AddressFamily.UNIX]
const DATAGRAM_FAMILIES: readonly DatagramFamily[] = [AddressFamily.INET, AddressFamily.INET6]
const DEFAULT_MAX_PACKET_SIZE = 8192
/** The largest UDP payload (IPv6 jumbograms aside). */
const MAX_PACKET_SIZE = 65535
const EBADF = osConstants.errno.EBADF
const ENOTSOCK = osConstants.errno.ENOTSOCK

/**
 * An event loop in the Rust core that adopts socket descriptors made elsewhere (Twisted's
 * IReactorSocket: `adoptStreamPort`, `adoptStreamConnection`, `adoptDatagramPort`), connects,
 * proxies and relays. The package's default one is `reactor`; more can be made.
 */
export class Reactor {
  private core: ReactorCore | null = null
  private closing: Promise<void> | null = null
  private readonly report: ErrorReporter
  private readonly thread: boolean

  constructor(options: ReactorOptions = {}) {
    const { onError, thread = true } = optionsArgument(options, 'Reactor: options', { required: true })
    if (onError !== undefined) functionArgument(onError, 'Reactor: options.onError')
    this.thread = booleanArgument(thread, 'Reactor: options.thread')
    this.report = onError === undefined ? reportToStderr : guardReporter(onError.bind(options))
  }

  /**
   * Adopts a bound, listening SOCK_STREAM fd (INET, INET6 or UNIX). Calls `factory.doStart()` and
   * starts accepting; each connection gets `factory.buildProtocol(peer)`. The caller keeps its fd.
   * `options`: admission limits (`maxConnections`, `perSource`, `acceptRate`) and `proxyProtocol`
   * (read a PROXY header first: `getPeer()` is the client it names, `transport.proxyInfo` has it).
   *
   * Types: `family` is an `AddressFamily` (a number known only at run time, e.g.
   * `sockets.info(fd).family`, is checked then), and types the port's address:
   * `AddressFamily.INET` gives a `ListeningPort<IPv4Address>`. The same holds for every adopt method.
   */
  adoptStreamPort<F extends number>(
    fd: number,
    family: FamilyArgument<F>,
    factory: IProtocolFactory<IProtocol<AddressOf<F>, Address>>,
    options?: StreamPortOptions,
  ): ListeningPort<AddressOf<F>> {
    this.checkOpen()
    fdArgument(fd, 'adoptStreamPort: fd')
    familyArgument(family, STREAM_FAMILIES, 'adoptStreamPort')
    fdInRange(fd, 'adoptStreamPort')
    const portOptions = afterFdRules(fd, family, ADOPT_LISTENER, 'adoptStreamPort', () => {
      factoryArgument(factory, 'adoptStreamPort')
      return options === undefined ? null : streamPortOptions(options, 'adoptStreamPort: options')
    })
    const core = this.openCore()
    const result = portOptions === null ? core.native.adopt(fd, family, ADOPT_LISTENER) : core.native.adoptPort(fd, family, portOptions)
    const id = adopted(result, fd, family, 'adoptStreamPort', ADOPT_LISTENER)
    let port: ListeningPort<AddressOf<F>>
    try {
      const address = decodeSocketAddress(core.native.localAddress(id), family, 'TCP')
      if (address === null) throw errnoError('EBADF', `adoptStreamPort: fd ${fd} has no local address`)
      // The address is of the socket's family: the core refused a socket of another (REFUSED_FAMILY).
      port = new ListeningPort(core, id, family, factory, address as AddressOf<F>) // registers itself
    } catch (err) {
      core.native.closePort(id)
      throw err
    }
    try {
      factory.doStart?.()
    } catch (err) {
      port.abandon()
      throw err
    }
    return port
  }

  /**
   * A native proxy port on a bound, listening SOCK_STREAM fd (INET, INET6 or UNIX): the core
   * accepts, reads a PROXY header if `options.proxyProtocol` asks, connects to an upstream (one, a
   * balanced list, or what `options.upstream(client)` returns) with retries and a timeout, sends a
   * PROXY header first if `options.proxyHeader` asks, and relays, with no JS per connection.
   * Admission limits as for `adoptStreamPort`. The caller keeps its fd.
   */
  listenProxy<F extends number>(fd: number, family: FamilyArgument<F>, options: ProxyPortOptions): ProxyPort<AddressOf<F>> {
    this.checkOpen()
    fdArgument(fd, 'listenProxy: fd')
    familyArgument(family, STREAM_FAMILIES, 'listenProxy')
    fdInRange(fd, 'listenProxy')
    const { native, route } = afterFdRules(fd, family, ADOPT_LISTENER, 'listenProxy', () => proxyPortOptions(options, 'listenProxy: options'))
    const core = this.openCore()
    const id = adopted(core.native.adoptPort(fd, family, native), fd, family, 'listenProxy', ADOPT_LISTENER)
    try {
      const address = decodeSocketAddress(core.native.localAddress(id), family, 'TCP')
      if (address === null) throw errnoError('EBADF', `listenProxy: fd ${fd} has no local address`)
      return new ProxyPort(core, id, address as AddressOf<F>, typeof route === 'function' ? route : null) // registers itself
    } catch (err) {
      core.native.closePort(id)
      throw err
    }
  }

  /**
   * Adopts a connected SOCK_STREAM fd (INET, INET6 or UNIX): builds its protocol with
   * `factory.buildProtocol(peer)` and runs `connectionMade()` inside this call. Returns the protocol,
   * or undefined when the factory declined (then only the reactor's duplicate is closed).
   */
  adoptStreamConnection<P extends IProtocol<AddressOf<F>>, F extends number = number>(
    fd: number,
    family: FamilyArgument<F>,
    factory: IProtocolFactory<P>,
  ): P | undefined {
    this.checkOpen()
    fdArgument(fd, 'adoptStreamConnection: fd')
    familyArgument(family, STREAM_FAMILIES, 'adoptStreamConnection')
    fdInRange(fd, 'adoptStreamConnection')
    afterFdRules(fd, family, ADOPT_CONNECTION, 'adoptStreamConnection', () => factoryArgument(factory, 'adoptStreamConnection'))
    const core = this.openCore()
    const id = adopted(core.native.adopt(fd, family, ADOPT_CONNECTION), fd, family, 'adoptStreamConnection', ADOPT_CONNECTION)
    // Until the connection is made, undoing closes the duplicate without shutdown: the caller's fd
    // still holds the connection.
    let peer: Address | null
    try {
      peer = decodeSocketAddress(core.native.peerAddress(id), family, 'TCP')
      if (peer === null) throw errnoError('ENOTCONN', `adoptStreamConnection: fd ${fd} is not connected`)
    } catch (err) {
      core.native.closePort(id)
      throw err
    }
    return establish(core, id, family, factory, peer, 'adopted') as P | undefined
  }

  /**
   * Adopts a SOCK_DGRAM fd (INET or INET6, bound or not). The port becomes `protocol.transport` and
   * `startProtocol()` runs inside this call. Datagrams longer than `maxPacketSize` arrive truncated.
   */
  adoptDatagramPort<F extends number>(
    fd: number,
    family: FamilyArgument<F, DatagramFamily>,
    protocol: IDatagramProtocol,
    maxPacketSize: number = DEFAULT_MAX_PACKET_SIZE,
  ): DatagramPort<IPAddressOf<F>> {
    this.checkOpen()
    fdArgument(fd, 'adoptDatagramPort: fd')
    familyArgument(family, DATAGRAM_FAMILIES, 'adoptDatagramPort')
    fdInRange(fd, 'adoptDatagramPort')
    afterFdRules(fd, family, ADOPT_DATAGRAM, 'adoptDatagramPort', () => {
      datagramProtocolArgument(protocol, 'adoptDatagramPort')
      integerArgument(maxPacketSize, 'adoptDatagramPort: maxPacketSize', 1, MAX_PACKET_SIZE)
    })
    const core = this.openCore()
    const id = adopted(core.native.adopt(fd, family, ADOPT_DATAGRAM, maxPacketSize), fd, family, 'adoptDatagramPort', ADOPT_DATAGRAM)
    let port: DatagramPort<IPAddressOf<F>>
    try {
      const host = decodeRecord(core.native.localAddress(id), 'UDP')
      if (host === null) throw errnoError('EBADF', `adoptDatagramPort: fd ${fd} has no local address`)
      // Of the socket's family, which the core checked (INET or INET6).
      port = new DatagramPort(core, id, family, protocol, maxPacketSize, host as IPAddressOf<F>) // registers itself
    } catch (err) {
      core.native.closePort(id)
      throw err
    }
    try {
      protocol.makeConnection(port)
    } catch (err) {
      port.abandon() // no stopProtocol follows, onError is not called
      throw err
    }
    return port
  }

  /**
   * Adopts a SOCK_DGRAM fd (INET or INET6) as a UDP forwarder that runs in the core: each client
   * address gets a session with its own connected upstream socket, so replies come back by the
   * kernel's demultiplexing; datagrams never pass through JS (a routing function, if given, is
   * called once per new client, in batches). The caller keeps its fd. See docs/udp-forwarder.md.
   * Argument checks: the fd's (as `adoptDatagramPort`), then the options'.
   */
  listenDatagramProxy<F extends number>(
    fd: number,
    family: FamilyArgument<F, DatagramFamily>,
    options: DatagramProxyOptions,
  ): DatagramProxyPort<IPAddressOf<F>> {
    this.checkOpen()
    fdArgument(fd, 'listenDatagramProxy: fd')
    familyArgument(family, DATAGRAM_FAMILIES, 'listenDatagramProxy')
    fdInRange(fd, 'listenDatagramProxy')
    const checked = afterFdRules(fd, family, ADOPT_DATAGRAM, 'listenDatagramProxy', () => checkDatagramProxyOptions(options, 'listenDatagramProxy'))
    const core = this.openCore()
    const id = adopted(callNative(() => core.native.adoptDatagramProxy(fd, family, checked.native)), fd, family, 'listenDatagramProxy', ADOPT_DATAGRAM)
    try {
      const host = decodeRecord(core.native.localAddress(id), 'UDP')
      if (host === null) throw errnoError('EBADF', `listenDatagramProxy: fd ${fd} has no local address`)
      return new DatagramProxyPort(core, id, family, host as IPAddressOf<F>, checked.router) // registers itself
    } catch (err) {
      core.native.closePort(id)
      throw err
    }
  }

  /**
   * Connects to `host` (an IP literal, or a name looked up with `dns.lookup`; the first address is
   * used) and `port`, without blocking: the connect runs in the core. Then
   * `factory.buildProtocol(peer)` → `makeConnection` → `connectionMade()`, and the promise resolves
   * with the protocol (`undefined` when the factory declined: the connection is closed).
   * Rejections: `ConnectError` with Node's `code`; an abort rejects with the signal's reason.
   */
  connectTCP<P extends IProtocol<IPAddress>>(host: string, port: number, factory: IProtocolFactory<P>, options?: ConnectOptions): Promise<P | undefined> {
    this.checkOpen()
    const target: ConnectTarget = { kind: 'tcp', host, port }
    const checked = checkConnectArgs(target, factory, options)
    return new PendingConnect(this.openCore(), target, factory, checked).promise as Promise<P | undefined>
  }

  /** Like `connectTCP`, to a UNIX socket path (abstract names start with "\0"). */
  connectUNIX<P extends IProtocol<UNIXAddress>>(path: string, factory: IProtocolFactory<P>, options?: Omit<ConnectOptions, 'bindAddress' | 'tls'>): Promise<P | undefined> {
    this.checkOpen()
    const target: ConnectTarget = { kind: 'unix', path }
    const checked = checkConnectArgs(target, factory, options)
    return new PendingConnect(this.openCore(), target, factory, checked).promise as Promise<P | undefined>
  }

  /**
   * Moves bytes both ways between two connected stream transports of this reactor inside the core
   * (splice(2) between stream sockets), never through JS. Resolves with the byte counts once both
   * connections are closed (each protocol gets connectionLost once). See docs/proxy.md, "Building a proxy".
   */
  relay(a: IStreamTransport, b: IStreamTransport, options?: RelayOptions): Promise<RelayResult> {
    this.checkOpen()
    if (this.core === null) throw invalidState('relay: both transports must belong to this reactor')
    return ActiveRelay.start(this.core, a, b, options).promise
  }

  /**
   * The reactor's counters (connections, bytes, datagrams, batches, wake-ups, relays) as plain
   * numbers: cheap to call, kept by the core at O(1) per event. Zeros before the first adoption;
   * the final figures after `close()`. See docs/adopting.md, "reactor.stats()".
   */
  stats(): ReactorStats {
    return this.core === null ? noStats() : statsOf(this.core.native)
  }

  /**
   * Aborts every connection (ConnectionAborted), stops every port, and closes the core (joining its
   * thread). Idempotent; resolves on a later turn. Afterwards adopt calls throw ERR_REACTOR_CLOSED.
   */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.core === null ? nextTurn() : this.core.close()
    return this.closing
  }

  private checkOpen(): void {
    if (this.closing !== null) throw reactorClosed()
  }

  /** The core is made by the first adopt call whose arguments pass (the native side opens nothing
   *  until its first successful adoption). */
  private openCore(): ReactorCore {
    this.core ??= new ReactorCore((onReady) => openNative(onReady, this.thread), this.report)
    return this.core
  }
}

/**
 * The one place that knows how the core is driven. The native constructor opens nothing (its poller
 * and thread start with the first successful adoption).
 */
function openNative(onReady: () => void, thread: boolean): NativeReactor {
  // thread: false → the core's poller is watched by Node's own loop (uv_poll): no I/O thread.
  return new binding.NativeReactor(onReady, thread)
}

// ---- The core's refusals (adoption rules 3-6), and the arguments checked after them -----------

/** The id of a successful adoption by `method`, or the contract's error for the core's refusal
 *  (its checks are the core's: crates/core/src/sys/validate.rs). A check that passed without
 *  adopting gives -1. `kind` (ADOPT_*) says which socket type the method needs. */
function adopted(result: AdoptResult, fd: number, family: number, method: string, kind: number): number {
  switch (result.refusal) {
    case undefined:
      return result.id ?? -1
    case REFUSED_SOCKET_TYPE:
      throw UnsupportedSocketType.refused(method, fd, result.socketType ?? -1, kind === ADOPT_DATAGRAM ? SocketType.DGRAM : SocketType.STREAM)
    case REFUSED_FAMILY:
      throw UnsupportedAddressFamily.mismatch(method, fd, family, result.actualFamily ?? -1)
    case REFUSED_NOT_LISTENING:
      throw errorFromErrno(result.errno ?? 0, `${method}: fd ${fd} is not a listening socket (listen() was not called on it)`, { fd })
    case REFUSED_NOT_CONNECTED:
      throw errorFromErrno(result.errno ?? 0, `${method}: fd ${fd} is not connected`, { fd })
    default: {
      const errno = result.errno ?? 0
      const what = errno === EBADF ? 'is not open' : errno === ENOTSOCK ? 'is not a socket' : 'cannot be adopted'
      throw errorFromErrno(errno, `${method}: fd ${fd} ${what}`, { fd })
    }
  }
}

/**
 * Runs the checks of the arguments after fd and family (the factory or protocol, options,
 * maxPacketSize). The fd's rules 3-6 come first (the contract's order), and the native adopt
 * adopts on success: so when one of these fails, the core runs the fd's rules without adopting
 * (and without opening anything), and a bad fd gets its own error; else this one is thrown.
 */
function afterFdRules<T>(fd: number, family: number, kind: number, method: string, check: () => T): T {
  try {
    return check()
  } catch (err) {
    adopted(binding.checkAdoption(fd, family, kind), fd, family, method, kind)
    throw err
  }
}

// ---- Error reporting -------------------------------------------------------------------------

function reportToStderr(err: unknown): void {
  console.error('reactor-socket: a protocol callback threw:', err)
}

/** An onError that throws must not break the dispatch: fall back to stderr. */
function guardReporter(onError: (err: unknown) => void): ErrorReporter {
  return (err) => {
    try {
      onError(err)
    } catch (reporterError) {
      reportToStderr(err)
      console.error('reactor-socket: options.onError threw too:', reporterError)
    }
  }
}
