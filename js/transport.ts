// The transport of a stream connection (TCP or UNIX): Twisted's ITCPTransport, IConsumer, IPushProducer
// and IHalfCloseableDescriptor, on top of a connection id in the core.
import { decodeSocketAddress, type Address } from './address'
import { AddressFamily } from './constants'
import { closeDescriptors } from './descriptors'
import { callNative, ConnectionAborted, ConnectionDone, ConnectionLost, errnoError, invalidState, type TLSError } from './errors'
import { Handle } from './handle'
import { HeldInput } from './held-input'
import type { ConnectionEntry, ReactorHost } from './host'
import type { ProxyInfo } from './proxy-info'
import type { ConnectionLostReason, IProtocol, IPullProducer, IPushProducer, IStreamTransport } from './interfaces'
import type { NativeReactor } from './native'
import { clientContext, serverContext, type TlsClientOptions, type TlsInfo, type TlsServerOptions } from './tls-options'
import type { SocketOptionName, SocketOptionValues } from './socket-option-names'
import { optionCall, socketOptionName, socketOptionValue } from './socket-options'
import { booleanArgument, byteChunksArgument, bytesArgument, checkFd, optionsArgument, shown } from './validate'
import {
  STATE_CLOSED,
  STATE_DISCONNECTING,
  STATE_GONE,
  STATE_PAUSED,
  STATE_READ_STOPPED,
  STATE_RELAYING,
  STATE_WRITE_CLOSED,
  STATE_WRITE_CLOSING,
} from './wire'

/** The write buffer is full (a streaming producer is paused) when it holds more than this. */
export const WRITE_BUFFER_FULL = 65536

/**
 * The core's word that the connection is closed: CLOSED from the call that closed it, GONE once the
 * core no longer knows the id (asked when JS takes the close; see `take` for why a GONE that only
 * refreshes the state is not kept).
 */
const ENDED = STATE_CLOSED | STATE_GONE

type Producer = IPullProducer & { pauseProducing?(): void }

/** A stream connection (TCP or UNIX), as `protocol.transport` holds it. */
export class StreamTransport extends Handle implements IStreamTransport, ConnectionEntry {
  /**
   * The connection's state as the core last reported it (STATE_* bits). The core owns the state
   * machine (crates/core/src/stream_state.rs); this is only the value its calls and events returned,
   * never derived here. 0 until the first call: the core hands over connections established.
   */
  private state = 0

  // What exists only in JS. Input the core handed over while the protocol is paused (or before
  // input held earlier was delivered), up to the peer's EOF.
  private readonly held: HeldInput
  /** The protocol was told of the peer's EOF (readConnectionLost) / of our FIN (writeConnectionLost). */
  private readLostDelivered = false
  private writeLostDelivered = false

  // Consumer side: the registered producer.
  private producer: Producer | null = null
  private streamingProducer = false
  private producerPaused = false
  private pullTimer: NodeJS.Immediate | null = null

  /** Set once connectionLost ran (exactly once), or when an adopt call is undone: nothing more
   *  reaches the protocol. */
  private silenced = false
  private local: Address | null = null
  /** The TLS session's parameters once its handshake completed (null without TLS). */
  private tls: TlsInfo | null
  /** startTLS was called and its handshake has not completed yet. */
  private tlsStarting = false

  /** @internal Made by the reactor. */
  constructor(
    host: ReactorHost,
    id: number,
    private readonly family: AddressFamily,
    /** The protocol this connection's events go to. */
    readonly protocol: IProtocol,
    private readonly peer: Address,
    /** The PROXY header the connection began with (ports that read them), else null. */
    readonly proxyInfo: ProxyInfo | null = null,
    /** Its TLS session's parameters (a TLS port's connection, a connect with TLS), else null. */
    tlsInfo: TlsInfo | null = null,
    /** Accepted by a port: `startTLS` takes the server side unless told otherwise. */
    private readonly accepted = false,
  ) {
    super(host, id, 'connection')
    this.tls = tlsInfo
    this.held = new HeldInput({
      accepting: () => this.delivering,
      data: (chunk) => this.deliver(chunk),
      fds: (fds) => this.deliverFds(fds),
      eof: () => this.handleEof(),
    })
    host.register('connection', id, this)
  }

  /** True until the connection is lost. */
  get connected(): boolean {
    return (this.state & ENDED) === 0
  }

  /** True once `loseConnection()` was called (the connection flushes, then closes). */
  get disconnecting(): boolean {
    return (this.state & STATE_DISCONNECTING) !== 0
  }

  /**
   * The connection's TLS session: protocol, cipher, ALPN protocol, server name, the peer's
   * certificates (DER), whether it resumed. null without TLS, and during a `startTLS` handshake.
   */
  get tlsInfo(): TlsInfo | null {
    return this.tls
  }

  /**
   * Twisted's ITLSTransport.startTLS: from now on the connection's bytes go through TLS. Bytes
   * written before this call go out in the clear first; bytes written after it are encrypted
   * (held until the handshake completes, never sent in the clear). The handshake runs in the
   * core; the protocol's `handshakeCompleted()` (if it has one) is called when it completes, and
   * a failure ends the connection with `connectionLost(TLSError)`.
   *
   * `how.server`: take the server side (`options` are a server's: cert, key, …) or the client side
   * (`options` are a client's: ca, servername, …; the peer's address is verified unless
   * `servername` says otherwise). Default: the server side on connections a port accepted, the
   * client side on connections made by connectTCP/connectUNIX or adopted.
   */
  startTLS(options: TlsServerOptions | TlsClientOptions, how: { server?: boolean } = {}): void {
    const { server = this.accepted } = optionsArgument(how, 'startTLS: how')
    const asServer = booleanArgument(server, 'startTLS: how.server')
    if (!this.connected) throw invalidState('startTLS: the connection is closed')
    if (this.tls !== null || this.tlsStarting) throw invalidState('startTLS: TLS is already started on this connection')
    if (this.state & (STATE_RELAYING | STATE_DISCONNECTING | STATE_WRITE_CLOSING | STATE_WRITE_CLOSED)) {
      throw invalidState('startTLS: the connection is relaying, closing, or half-closed')
    }
    const native = this.host.native
    // Options first: a bad one throws before anything changes.
    const start = asServer
      ? ((context) => (held: Buffer[]) => native.startTlsServer(this.id, context, held))(serverContext(options, 'startTLS: options'))
      : ((context) => (held: Buffer[]) => native.startTlsClient(this.id, context, this.verifiedName(options as TlsClientOptions), held))(
          clientContext(options, 'startTLS: options'),
        )
    // Bytes received before this call and not delivered are the peer's first TLS records.
    const held = [...this.held.takeBytes(), ...(this.host.takeInputAhead([this.id]).get(this.id) ?? [])]
    this.take(callNative(() => start(held)))
    this.tlsStarting = true
  }

  /** The name a client startTLS verifies: the servername option, else the peer's address. */
  private verifiedName(options: TlsClientOptions): string {
    if (typeof options.servername === 'string') return options.servername
    const peer = this.peer as { host?: string }
    return typeof peer.host === 'string' ? peer.host.split('%')[0] : 'localhost'
  }

  /** Bytes that `write` accepted and the kernel has not taken yet. */
  get bufferSize(): number {
    return this.connected ? this.host.native.bufferSize(this.id) : 0
  }

  // ---- Writing -------------------------------------------------------------------------------

  /** Whether the core still takes writes is the core's call (it drops them after a half-close). */
  write(data: Uint8Array | string): void {
    const bytes = bytesArgument(data, 'write')
    if (!this.connected || bytes.length === 0) return // dropped, as in Twisted
    this.afterWrite(this.host.native.write(this.id, bytes))
  }

  writeSequence(chunks: Iterable<Uint8Array | string>): void {
    const list = byteChunksArgument(chunks, 'writeSequence')
    if (!this.connected || list.length === 0) return
    this.afterWrite(this.host.native.writev(this.id, list))
  }

  /**
   * Stops reading, flushes what was written, then closes; `connectionLost(ConnectionDone)` follows.
   * As in Twisted, the close happens after the current turn: writes made later in this turn still go
   * out (the core accepts them until JS releases the close on the next tick).
   */
  loseConnection(): void {
    if (!this.connected || this.disconnecting) return
    this.take(this.host.native.loseConnection(this.id))
    this.held.drop() // "stop reading": nothing more is delivered
    process.nextTick(StreamTransport.releaseClose, this)
  }

  private static releaseClose(transport: StreamTransport): void {
    if (!transport.connected) return // aborted or lost meanwhile
    transport.take(transport.host.native.releaseClose(transport.id))
    if (!transport.connected) transport.finish(new ConnectionDone(), true)
    // else the core closes once the queue is flushed and reports EV_CLOSED
  }

  /**
   * UNIX connections: sends a duplicate of `fd` with the first byte of the next `write()` (Twisted's
   * IUNIXTransport); the caller keeps its own fd. TCP → Error ENOTSUP; a bad fd → EBADF; more than
   * 253 before a write → ETOOMANYREFS.
   */
  sendFileDescriptor(fd: number): void {
    checkFd(fd, 'sendFileDescriptor: fd') // the binding takes a C int: a larger number would wrap
    if (this.family !== AddressFamily.UNIX) throw errnoError('ENOTSUP', 'sendFileDescriptor: descriptors travel only over UNIX connections')
    if (!this.connected) throw errnoError('EBADF', 'sendFileDescriptor: the connection is closed')
    callNative(() => this.host.native.sendFileDescriptor(this.id, fd))
  }

  /** Sends FIN once pending data is written, then calls the protocol's `writeConnectionLost()`. */
  loseWriteConnection(): void {
    if (!this.connected || (this.state & (STATE_DISCONNECTING | STATE_WRITE_CLOSING | STATE_WRITE_CLOSED)) !== 0) return
    this.take(this.host.native.shutdownWrite(this.id))
    if (this.state & STATE_WRITE_CLOSED) process.nextTick(() => this.onWriteClosed())
    // else EV_WRITE_CLOSED follows once the queue is flushed
  }

  /** Discards pending data and closes now; `connectionLost(ConnectionAborted)` follows. */
  abortConnection(): void {
    if (!this.connected) return
    this.host.native.abort(this.id)
    this.finish(new ConnectionAborted(), true)
  }

  // ---- Addresses and options -----------------------------------------------------------------

  getHost(): Address {
    // Asked of the kernel once (as Twisted would, it fails once the socket is closed), then cached.
    if (this.local === null) {
      const local = this.connected
        ? decodeSocketAddress(this.host.native.localAddress(this.id), this.family, 'TCP')
        : null
      if (local === null) throw errnoError('EBADF', 'getHost: the connection is closed')
      this.local = local
    }
    return this.local
  }

  getPeer(): Address {
    return this.peer
  }

  setTcpNoDelay(on: boolean): void {
    this.tcpOption('setTcpNoDelay', (native, id) => native.setNoDelay(id, Boolean(on)))
  }

  getTcpNoDelay(): boolean {
    return this.tcpOption('getTcpNoDelay', (native, id) => native.getNoDelay(id))
  }

  setTcpKeepAlive(on: boolean): void {
    this.tcpOption('setTcpKeepAlive', (native, id) => native.setKeepAlive(id, Boolean(on)))
  }

  getTcpKeepAlive(): boolean {
    return this.tcpOption('getTcpKeepAlive', (native, id) => native.getKeepAlive(id))
  }

  /**
   * Sets socket option `name` on this connection's socket (the reactor's duplicate; a descriptor
   * the caller kept of the same socket sees the change). Checked as `sockets.setOption` checks:
   * the value by the option's kind (TypeError / RangeError), an unknown name TypeError
   * 'ERR_INVALID_ARG_VALUE'; then the kernel's answer (e.g. TCP_NODELAY on a UNIX connection
   * gives 'ENOTSUP', SO_MARK without CAP_NET_ADMIN 'EPERM'). A closed connection → 'EBADF'.
   */
  setOption<N extends SocketOptionName>(name: N, value: SocketOptionValues[N]): void {
    const option = socketOptionName(name, 'setOption')
    const checked = socketOptionValue(option, value, `setOption: ${option}`)
    if (!this.connected) throw errnoError('EBADF', `setOption: the connection is closed (${option})`)
    optionCall(option, () => this.host.native.setSocketOption(this.id, option, checked))
  }

  /** What the kernel reports for socket option `name` of this connection (see `sockets.getOption`). */
  getOption<N extends SocketOptionName>(name: N): SocketOptionValues[N] {
    const option = socketOptionName(name, 'getOption')
    if (!this.connected) throw errnoError('EBADF', `getOption: the connection is closed (${option})`)
    return optionCall(option, () => this.host.native.getSocketOption(this.id, option)) as SocketOptionValues[N]
  }

  /**
   * Runs a TCP socket-option call. TCP options need a TCP socket: on a UNIX socket they fail as
   * setsockopt would (ENOTSUP); on a closed connection with EBADF.
   */
  private tcpOption<T>(method: string, call: (native: NativeReactor, id: number) => T): T {
    if (this.family === AddressFamily.UNIX) {
      throw errnoError('ENOTSUP', `${method}: TCP options are not supported on a UNIX socket`)
    }
    if (!this.connected) throw errnoError('EBADF', `${method}: the connection is closed`)
    return callNative(() => call(this.host.native, this.id))
  }

  // ---- Producer side (reading) ---------------------------------------------------------------

  /** Stops reading; data that still arrives is held and delivered after `resumeProducing()`. */
  pauseProducing(): void {
    if (!this.connected || this.disconnecting || this.paused) return
    this.take(this.host.native.pauseReading(this.id))
  }

  /** Resumes reading; held data is delivered first, on a later tick (never inside this call). */
  resumeProducing(): void {
    if (!this.connected || this.disconnecting || !this.paused) return
    this.take(this.host.native.resumeReading(this.id))
    this.held.deliverLater()
  }

  /** Loses the connection (Twisted's IProducer.stopProducing on a transport). */
  stopProducing(): void {
    this.loseConnection()
  }

  // ---- Consumer side (writing) ---------------------------------------------------------------

  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    if (this.producer !== null) {
      throw new Error('registerProducer: a producer is already registered; unregister it first')
    }
    if (!this.connected) {
      producer.stopProducing()
      return
    }
    this.producer = producer
    this.streamingProducer = Boolean(streaming)
    this.producerPaused = false
    if (!this.streamingProducer) producer.resumeProducing()
  }

  unregisterProducer(): void {
    this.producer = null
    this.clearPullTimer()
  }

  /** After a write: pause a streaming producer that filled the buffer; keep a pull producer going. */
  private afterWrite(queued: number): void {
    const producer = this.producer
    if (producer === null) return
    if (this.streamingProducer) {
      if (queued > WRITE_BUFFER_FULL && !this.producerPaused) {
        this.producerPaused = true
        producer.pauseProducing?.()
      }
    } else if (queued === 0 && this.pullTimer === null) {
      // The kernel took everything at once, so no EV_DRAINED will come: ask for more on a later turn
      // (not a microtask, so a fast pull producer cannot starve the event loop).
      this.pullTimer = setImmediate(StreamTransport.pullAgain, this)
    }
  }

  private static pullAgain(transport: StreamTransport): void {
    transport.pullTimer = null
    // A later write was queued: its EV_DRAINED resumes the producer.
    if (transport.connected && transport.host.native.bufferSize(transport.id) > 0) return
    transport.resumeProducer()
  }

  private resumeProducer(): void {
    const producer = this.producer
    if (producer === null || !this.connected || !this.writable) return
    try {
      producer.resumeProducing()
    } catch (err) {
      this.fail(err)
    }
  }

  private clearPullTimer(): void {
    if (this.pullTimer !== null) {
      clearImmediate(this.pullTimer)
      this.pullTimer = null
    }
  }

  // ---- Events from the core (called by the reactor's dispatch) -------------------------------

  /** @internal Runs `makeConnection` for an accepted connection; a throw aborts the connection. */
  start(): void {
    try {
      this.protocol.makeConnection(this)
    } catch (err) {
      this.fail(err)
    }
  }

  /** @internal EV_DATA, EV_DATA_CHUNK. */
  onData(chunk: Buffer): void {
    if (this.state & (STATE_READ_STOPPED | STATE_RELAYING)) return // loseConnection stopped reading; a relay owns the bytes
    if (this.paused || this.held.holdsInput) this.held.hold(chunk)
    else this.deliver(chunk)
  }

  /** @internal EV_FDS: descriptors the peer sent, ahead of the data they came with. */
  onFileDescriptors(fds: number[]): void {
    if (this.state & (STATE_READ_STOPPED | STATE_RELAYING) || !this.connected) return closeDescriptors(fds)
    if (this.paused || this.held.holdsInput) this.held.hold(fds)
    else this.deliverFds(fds)
  }

  /** @internal EV_EOF: the peer sent FIN. */
  onEof(): void {
    if (this.state & (STATE_READ_STOPPED | STATE_RELAYING) || this.readLostDelivered) return
    this.refreshState()
    if (this.paused || this.held.holdsInput) this.held.holdEof()
    else this.handleEof()
  }

  /** @internal EV_DRAINED: the write queue became empty. */
  onDrained(): void {
    if (this.producer === null || !this.writable) return
    if (!this.streamingProducer) {
      this.clearPullTimer()
      this.resumeProducer()
    } else if (this.producerPaused) {
      this.producerPaused = false
      this.resumeProducer()
    }
  }

  /** @internal EV_WRITE_CLOSED (or a synchronous shutdownWrite): our FIN is out. */
  onWriteClosed(): void {
    if (!this.connected || this.writeLostDelivered) return
    this.writeLostDelivered = true
    this.refreshState()
    if (typeof this.protocol.writeConnectionLost === 'function') {
      try {
        this.protocol.writeConnectionLost()
      } catch (err) {
        this.fail(err)
        return
      }
    }
    if (this.readLostDelivered) this.loseConnection() // both directions closed
  }

  /** @internal EV_CLOSED: the core closed the connection; errno 0 is an orderly close; `tls` the TLS
   *  failure that closed it. */
  onClosed(errno: number, tls?: TLSError): void {
    if (!this.connected) return
    this.finish(tls ?? (errno === 0 ? new ConnectionDone() : ConnectionLost.fromErrno(errno)), false)
  }

  /** @internal EV_TLS_READY after startTLS: the handshake completed. */
  onTlsReady(info: TlsInfo): void {
    if (!this.connected) return
    this.tls = info
    this.tlsStarting = false
    const completed = this.protocol.handshakeCompleted
    if (typeof completed !== 'function') return
    try {
      completed.call(this.protocol)
    } catch (err) {
      this.fail(err)
    }
  }

  /** @internal A relay cannot take a connection whose startTLS handshake still runs. */
  get tlsHandshaking(): boolean {
    return this.tlsStarting
  }

  /**
   * @internal Undoes an adoption whose callbacks threw inside the adopt call: closes the duplicate
   * without shutdown (the caller's fd keeps the connection) and tells the protocol nothing more.
   */
  discard(): void {
    this.silenced = true
    if (this.connected) {
      this.host.native.closePort(this.id)
      this.takeClose()
    }
    this.held.drop()
    this.clearPullTimer()
    this.detach()
  }

  // ---- Relay (see relay.ts) ------------------------------------------------------------------

  /** @internal The state as the core has it now (GONE once it closed the connection). */
  coreState(): number {
    return this.host.native.streamState(this.id)
  }

  /**
   * @internal The connection is about to relay: its producer is unregistered, nothing more
   * reaches the protocol but connectionLost, and the bytes held for it (received while paused,
   * not yet delivered) are handed over to go out first.
   */
  enterRelay(): Buffer[] {
    this.unregisterProducer()
    return this.held.takeBytes()
  }

  /** @internal After the core started the relay. */
  refreshAfterRelay(): void {
    this.refreshState()
  }

  // ---- Internals -----------------------------------------------------------------------------

  /**
   * Takes the core's state after an event. A close the core made since is not taken from here: an
   * EV_CLOSED record later in the batch reports it (with its errno), so the protocol hears of the
   * events in the order they happened.
   */
  private refreshState(): void {
    this.take(this.host.native.streamState(this.id))
  }

  /** Keeps a state the core returned, unless the core no longer knows the connection (its close
   *  is reported by an event still to come; `takeClose` takes it then). */
  private take(state: number): void {
    if ((state & STATE_GONE) === 0) this.state = state
  }

  /** JS takes the close the core made: from now on the state is the core's word that it is gone. */
  private takeClose(): void {
    this.state = this.host.native.streamState(this.id)
  }

  /** Reading is paused (by the protocol or a consumer). */
  private get paused(): boolean {
    return (this.state & STATE_PAUSED) !== 0
  }

  /** Held input may be delivered: connected, not paused, not closing. */
  private get delivering(): boolean {
    return (this.state & (STATE_PAUSED | STATE_READ_STOPPED | ENDED | STATE_RELAYING)) === 0
  }

  /** Writes are still taken and a producer should keep producing. */
  private get writable(): boolean {
    return (this.state & (ENDED | STATE_DISCONNECTING | STATE_WRITE_CLOSING | STATE_WRITE_CLOSED | STATE_RELAYING)) === 0
  }

  private deliver(chunk: Buffer): void {
    try {
      this.protocol.dataReceived(chunk)
    } catch (err) {
      this.fail(err)
    }
  }

  /** Hands received descriptors to the protocol, or closes them when it takes none. */
  private deliverFds(fds: number[]): void {
    const receive = this.protocol.fileDescriptorReceived
    if (typeof receive !== 'function') return closeDescriptors(fds)
    for (let i = 0; i < fds.length; i++) {
      try {
        receive.call(this.protocol, fds[i])
      } catch (err) {
        closeDescriptors(fds.slice(i + 1))
        this.fail(err)
        return
      }
    }
  }

  /**
   * The peer's EOF. A protocol with `readConnectionLost` (half-close) gets that call and may keep
   * writing. Any other protocol's connection is closed like `loseConnection()`: pending writes are
   * flushed, then `connectionLost(ConnectionDone)` (Node's allowHalfOpen = false).
   */
  private handleEof(): void {
    this.readLostDelivered = true
    if (typeof this.protocol.readConnectionLost === 'function') {
      try {
        this.protocol.readConnectionLost()
      } catch (err) {
        this.fail(err)
        return
      }
      if (this.writeLostDelivered) this.loseConnection() // both directions closed
    } else {
      this.loseConnection()
    }
  }

  /** A protocol (or producer) callback threw: report it and abort with it as the reason. */
  private fail(err: unknown): void {
    this.host.report(err)
    if (!this.connected) return
    this.host.native.abort(this.id)
    // not String(err): a thrown object's own toString may throw in turn
    this.finish(err instanceof Error ? err : new Error(typeof err === 'string' ? err : shown(err)), true)
  }

  /**
   * The connection is closed in the core. `connectionLost` runs now when called from the dispatch,
   * or on the next tick when the protocol's own call closed it (never re-entrantly).
   */
  private finish(reason: ConnectionLostReason, deferred: boolean): void {
    this.takeClose()
    this.held.drop()
    this.clearPullTimer()
    this.detach()
    if (deferred) process.nextTick(() => this.notifyLost(reason))
    else this.notifyLost(reason)
  }

  private notifyLost(reason: ConnectionLostReason): void {
    if (this.silenced) return
    this.silenced = true // exactly once
    const producer = this.producer
    if (producer !== null) {
      this.producer = null
      try {
        producer.stopProducing()
      } catch (err) {
        this.host.report(err)
      }
    }
    try {
      this.protocol.connectionLost(reason)
    } catch (err) {
      this.host.report(err)
    }
  }
}
