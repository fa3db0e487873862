// A Node `stream.Duplex` over one stream connection, shaped like a `net.Socket`, so that Node's own
// http, https and tls (and other code written for sockets) can run on connections the reactor
// accepted, adopted or connected. Built on the public transport API only.
import { X509Certificate } from 'node:crypto'
import { Duplex, type Readable } from 'node:stream'
import { IPv4Address, IPv6Address, type Address } from './address'
import { ConnectionAborted, ConnectionClosed, ConnectionDone } from './errors'
import type { ConnectionLostReason, IProtocol, IProtocolFactory, IPullProducer, IStreamTransport } from './interfaces'
import { armTimer, functionArgument, optionsArgument, timeoutArgument } from './validate'

/** `new SocketStream()`'s and `ServerFactory.forStreams`'s options. */
export interface SocketStreamOptions {
  /** Keep the writable side open after the peer's EOF (default false, as for `net.Socket`). */
  allowHalfOpen?: boolean | undefined
  /** Bytes the readable side buffers before the transport stops reading (Node's default 16 KiB). */
  readableHighWaterMark?: number | undefined
  /** `write()` returns false while the transport holds more than this (Node's default 16 KiB). */
  writableHighWaterMark?: number | undefined
}

// The stream's handlers for its protocol, kept off the public (net.Socket-like) surface.
const kConnected = Symbol('connected')
const kData = Symbol('data')
const kEof = Symbol('eof')
const kWriteClosed = Symbol('writeClosed')
const kLost = Symbol('lost')

/** A chunk whose `_write` callback waits for the connection or for the transport to drain. */
type PendingWrite = { chunks: Buffer[]; bytes: number; callback: (err?: Error | null) => void }

/** What `SocketStream#getPeerCertificate()` gives (the fields of Node's it can fill). */
export interface PeerCertificate {
  /** The certificate, DER. */
  raw: Buffer
  /** The subject's attributes ({ CN: 'host.example.com', O: ..., ... }). */
  subject: Record<string, string>
  /** The issuer's attributes, as `subject`. */
  issuer: Record<string, string>
  /** The subject alternative names ('DNS:host.example.com, IP Address:127.0.0.1'), if any. */
  subjectaltname: string | undefined
  /** Start of validity, as Node prints it ('Jan  1 00:00:00 2025 GMT'). */
  valid_from: string
  /** End of validity, likewise. */
  valid_to: string
  /** The serial number, hexadecimal. */
  serialNumber: string
  /** SHA-1 fingerprint, colon-separated hexadecimal. */
  fingerprint: string
  /** SHA-256 fingerprint, colon-separated hexadecimal. */
  fingerprint256: string
}

function attributes(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const at = line.indexOf('=')
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1)
  }
  return out
}

function describeCertificate(raw: Buffer): PeerCertificate {
  const x = new X509Certificate(raw)
  return {
    raw,
    subject: attributes(x.subject),
    issuer: attributes(x.issuer),
    subjectaltname: x.subjectAltName,
    valid_from: x.validFrom,
    valid_to: x.validTo,
    serialNumber: x.serialNumber,
    fingerprint: x.fingerprint,
    fingerprint256: x.fingerprint256,
  }
}

/**
 * The protocol a `SocketStream` owns: hand it to the reactor (through a factory) and the connection
 * it gets becomes the stream's. It opts into half-close (`readConnectionLost`) so that the stream,
 * not the transport, decides what the peer's EOF means (`allowHalfOpen`).
 */
export class SocketStreamProtocol implements IProtocol {
  /**
   * The connection's transport, set by `makeConnection` (typed as always present, as for
   * `Protocol`, whose members this class has: it can stand wherever a `Protocol` is expected).
   */
  transport!: IStreamTransport
  /** The factory that built this protocol, if one did. */
  factory: IProtocolFactory | null = null
  /** True from `makeConnection` on. */
  connected = false

  /** @internal Called with the stream once the connection is made (`ServerFactory.forStreams`). */
  onConnect: ((stream: SocketStream) => void) | null = null

  /** @internal Made by the stream. */
  constructor(
    /** The stream this protocol feeds. */
    readonly stream: SocketStream,
  ) {}

  makeConnection(transport: IStreamTransport): void {
    this.connected = true
    this.transport = transport
    this.connectionMade()
  }

  /** The stream becomes connected (emits 'connect'); a `forStreams` listener gets it now. */
  connectionMade(): void {
    this.stream[kConnected](this.transport)
    if (this.onConnect !== null && !this.stream.destroyed) this.onConnect(this.stream)
  }

  dataReceived(data: Buffer): void {
    this.stream[kData](data)
  }

  readConnectionLost(): void {
    this.stream[kEof]()
  }

  writeConnectionLost(): void {
    this.stream[kWriteClosed]()
  }

  connectionLost(reason: ConnectionLostReason): void {
    this.stream[kLost](reason)
  }
}

/**
 * A `stream.Duplex` over one connection, with the `net.Socket` members Node's http, https and tls
 * use. Make one with `ServerFactory.forStreams(listener)` (one per connection), or make one yourself
 * and give `stream.protocol` to the reactor: until its connection is made the stream is
 * `connecting`, buffers writes, and emits `'connect'` once connected.
 *
 * Backpressure: `write()` returns false while the transport holds more than
 * `writableHighWaterMark` bytes, and `'drain'` follows once it drained; when the readable side
 * holds `readableHighWaterMark` bytes the transport stops reading until they are consumed.
 * `end()` sends FIN after pending data; `destroy()` closes at once (a FIN when nothing is pending,
 * else a reset); `destroy(err)` aborts the connection (reset).
 */
export class SocketStream extends Duplex {
  /** The protocol to hand to the reactor; its transport is this stream's connection. */
  readonly protocol: SocketStreamProtocol
  /** Bytes received. */
  bytesRead = 0
  /** True until the connection is made (a stream made before its connection, or connecting). */
  connecting = true
  /** The idle timeout set by `setTimeout` (ms; 0 disables), undefined until set. */
  timeout: number | undefined = undefined

  private conn: IStreamTransport | null = null
  /** Bytes handed to the transport. */
  private sent = 0
  /** An upper bound of the transport's `bufferSize` (see afterWrite). */
  private queueBound = 0
  /** The readable side was full: the transport is paused until `_read`. */
  private readPaused = false
  private eofPushed = false
  /** A write waiting for the connection (while connecting) or for the transport to drain. */
  private pendingWrite: PendingWrite | null = null
  /** The pull producer registered on the transport while a write waits for it to drain. */
  private drainWatcher: IPullProducer | null = null
  private drainWatching = false
  /** `_final`'s callback, called once our FIN is out. */
  private pendingFinal: ((err?: Error | null) => void) | null = null
  private idleTimer: NodeJS.Timeout | null = null
  // Options asked for before the connection was made, applied when it is.
  private wantNoDelay: boolean | null = null
  private wantKeepAlive: boolean | null = null
  private wantUnref = false
  private peerCache: Address | null = null
  private hostCache: Address | null = null

  constructor(options: SocketStreamOptions = {}) {
    optionsArgument(options, 'SocketStream: options')
    super({
      allowHalfOpen: options.allowHalfOpen === true,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
      // Strings written are turned into Buffers by the Writable; received bytes stay Buffers.
      decodeStrings: true,
    })
    this.protocol = new SocketStreamProtocol(this)
  }

  /** @internal A stream whose listener runs once the connection is made (`ServerFactory.forStreams`). */
  static withListener(listener: (stream: SocketStream) => void, options?: SocketStreamOptions): SocketStream {
    const stream = new SocketStream(options)
    stream.protocol.onConnect = listener
    return stream
  }

  /** The underlying transport (null before the connection is made). */
  get transport(): IStreamTransport | null {
    return this.conn
  }

  // ---- net.Socket's address members ----------------------------------------------------------

  /** The peer's IP address (`net.Socket#remoteAddress`); undefined for UNIX sockets or before the connection. */
  get remoteAddress(): string | undefined {
    const peer = this.peer()
    return peer === null ? undefined : peer.host
  }

  /** The peer's port (`net.Socket#remotePort`); undefined for UNIX sockets or before the connection. */
  get remotePort(): number | undefined {
    const peer = this.peer()
    return peer === null ? undefined : peer.port
  }

  /** 'IPv4' or 'IPv6' (`net.Socket#remoteFamily`); undefined for UNIX sockets or before the connection. */
  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return familyName(this.peer())
  }

  /** This end's IP address (`net.Socket#localAddress`); undefined for UNIX sockets or before the connection. */
  get localAddress(): string | undefined {
    const host = this.host()
    return host === null ? undefined : host.host
  }

  /** This end's port (`net.Socket#localPort`); undefined for UNIX sockets or before the connection. */
  get localPort(): number | undefined {
    const host = this.host()
    return host === null ? undefined : host.port
  }

  /** 'IPv4' or 'IPv6' (`net.Socket#localFamily`); undefined for UNIX sockets or before the connection. */
  get localFamily(): 'IPv4' | 'IPv6' | undefined {
    return familyName(this.host())
  }

  /** The local address as `net.Socket#address()` gives it (`{}` for UNIX sockets). */
  address():
    | {
        /** The local IP address. */
        address: string
        /** 'IPv4' or 'IPv6'. */
        family: string
        /** The local port. */
        port: number
      }
    | Record<string, never> {
    const host = this.host()
    return host === null ? {} : { address: host.host, family: familyName(host)!, port: host.port }
  }

  // ---- tls.TLSSocket's members, on a connection the core decrypts (a TLS port, a connect with
  // TLS, after startTLS): the stream carries the plaintext; Node's tls is not in the path. ------

  /** True on a TLS connection, as `tls.TLSSocket#encrypted` (http servers and frameworks look). */
  get encrypted(): boolean {
    return this.conn?.tlsInfo != null
  }

  /** 'TLSv1.3' or 'TLSv1.2', or null without TLS (`tls.TLSSocket#getProtocol()`). */
  getProtocol(): string | null {
    return this.conn?.tlsInfo?.protocol ?? null
  }

  /** The ALPN protocol agreed on, or false (`tls.TLSSocket#alpnProtocol`). */
  get alpnProtocol(): string | false {
    return this.conn?.tlsInfo?.alpnProtocol ?? false
  }

  /** The SNI name (on a server, the one the client asked for), or false. */
  get servername(): string | false {
    return this.conn?.tlsInfo?.servername ?? false
  }

  /** The cipher suite, as `tls.TLSSocket#getCipher()` (IANA name in both fields), or null. */
  getCipher(): {
    /** The cipher suite's IANA name. */
    name: string
    /** The same IANA name. */
    standardName: string
    /** The TLS version, 'TLSv1.3' or 'TLSv1.2'. */
    version: string
  } | null {
    const info = this.conn?.tlsInfo
    return info == null ? null : { name: info.cipher, standardName: info.cipher, version: info.protocol }
  }

  /**
   * The peer's certificate, a minimal `tls.TLSSocket#getPeerCertificate()`: `raw` (DER), subject
   * and issuer (as objects of their attributes), `subjectaltname`, validity, serial and
   * fingerprints, read with `crypto.X509Certificate`; `{}` when the peer sent none or without TLS.
   */
  getPeerCertificate(): PeerCertificate | Record<string, never> {
    const raw = this.conn?.tlsInfo?.peerCertificates[0]
    return raw === undefined ? {} : describeCertificate(raw)
  }

  /** Bytes written: handed to the connection, plus those still queued in this stream. */
  get bytesWritten(): number {
    const waiting = this.pendingWrite === null ? 0 : this.pendingWrite.bytes
    return this.sent + this.writableLength - (this.conn === null ? 0 : waiting)
  }

  /** As `net.Socket#pending`: true until the connection is made. */
  get pending(): boolean {
    return this.conn === null
  }

  /** As `net.Socket#readyState`. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening'
    if (this.readable) return this.writable ? 'open' : 'readOnly'
    return this.writable ? 'writeOnly' : 'closed'
  }

  // ---- net.Socket's options ------------------------------------------------------------------

  /** TCP_NODELAY (default on when called without an argument); a no-op on UNIX sockets. */
  setNoDelay(noDelay = true): this {
    const on = Boolean(noDelay)
    const conn = this.conn
    if (conn === null) this.wantNoDelay = on
    else if (this.isTcp() && conn.connected) conn.setTcpNoDelay(on)
    return this
  }

  /**
   * SO_KEEPALIVE; a no-op on UNIX sockets. The initial delay of `net.Socket#setKeepAlive` is not
   * applied: the transport sets the option only, so the system's keep-alive timing holds.
   */
  setKeepAlive(enable = false, _initialDelay?: number): this {
    const on = Boolean(enable)
    const conn = this.conn
    if (conn === null) this.wantKeepAlive = on
    else if (this.isTcp() && conn.connected) conn.setTcpKeepAlive(on)
    return this
  }

  /**
   * Emits `'timeout'` after `ms` without reading or writing (it does not close the stream, as with
   * `net.Socket`); 0 disables it. `callback` is added as a one-time `'timeout'` listener (removed
   * when `ms` is 0).
   */
  setTimeout(ms: number, callback?: () => void): this {
    // Infinity (or more than a timer holds) is no deadline: the timer is never armed.
    const delay = timeoutArgument(ms, 'setTimeout: ms')
    if (callback !== undefined) functionArgument(callback, 'setTimeout: callback')
    if (this.destroyed) return this
    this.timeout = ms
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer)
      this.idleTimer = null
    }
    if (ms === 0) {
      if (callback !== undefined) this.removeListener('timeout', callback)
    } else {
      // Unref'd, as Node's socket timers: an idle timeout never keeps the process alive.
      this.idleTimer = armTimer(delay, () => this.emit('timeout'))
      if (callback !== undefined) this.once('timeout', callback)
    }
    return this
  }

  /** Keeps the process alive while the connection is open (the default). */
  ref(): this {
    if (this.conn === null) this.wantUnref = false
    else this.conn.ref()
    return this
  }

  /** Lets the process exit while the connection stays open. */
  unref(): this {
    if (this.conn === null) this.wantUnref = true
    else this.conn.unref()
    return this
  }

  /** As `net.Socket#destroySoon`: ends the writable side, then destroys once it finished. */
  destroySoon(): void {
    if (this.writable) this.end()
    if (this.writableFinished) this.destroy()
    else this.once('finish', () => this.destroy())
  }

  // ---- Duplex implementation -----------------------------------------------------------------

  /** @internal */
  override _read(_size: number): void {
    if (this.readPaused) {
      this.readPaused = false
      this.conn?.resumeProducing()
    }
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const conn = this.conn
    if (conn === null) {
      this.pendingWrite = { chunks: [chunk], bytes: chunk.length, callback }
      return
    }
    conn.write(chunk)
    this.afterWrite(conn, chunk.length, callback)
  }

  /** @internal */
  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (err?: Error | null) => void,
  ): void {
    const list: Buffer[] = new Array(chunks.length)
    let bytes = 0
    for (let i = 0; i < chunks.length; i++) {
      list[i] = chunks[i].chunk
      bytes += list[i].length
    }
    const conn = this.conn
    if (conn === null) {
      this.pendingWrite = { chunks: list, bytes, callback }
      return
    }
    conn.writeSequence(list)
    this.afterWrite(conn, bytes, callback)
  }

  /** @internal */
  override _final(callback: (err?: Error | null) => void): void {
    const conn = this.conn
    if (conn === null || this.pendingWrite !== null) {
      // Not connected yet: the FIN goes out once the connection is made.
      this.pendingFinal = callback
      return
    }
    if (!conn.connected) {
      callback() // the connection closed cleanly already (an error destroys the stream instead)
      return
    }
    this.pendingFinal = callback
    conn.loseWriteConnection() // writeConnectionLost follows once the FIN is out
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.clearIdleTimer()
    this.pendingWrite = null
    this.pendingFinal = null
    const conn = this.conn
    if (conn !== null && conn.connected) {
      if (this.drainWatching) conn.unregisterProducer()
      this.drainWatching = false
      // Nothing left to send (or our FIN is out): close with FIN. Otherwise (or with an error) the
      // pending bytes are dropped, as net.Socket#destroy drops them, and the peer gets a reset.
      if (err === null && (this.writableFinished || conn.bufferSize === 0)) conn.loseConnection()
      else conn.abortConnection()
    }
    callback(err)
  }

  // ---- Events from the protocol --------------------------------------------------------------

  /** @internal */
  [kConnected](conn: IStreamTransport): void {
    if (this.destroyed) {
      // Destroyed while connecting: nothing wants this connection any more.
      conn.loseConnection()
      return
    }
    this.conn = conn
    this.connecting = false
    if (this.wantUnref) conn.unref()
    if (this.isTcp()) {
      if (this.wantNoDelay !== null) conn.setTcpNoDelay(this.wantNoDelay)
      if (this.wantKeepAlive !== null) conn.setTcpKeepAlive(this.wantKeepAlive)
    }
    const pending = this.pendingWrite
    if (pending !== null) {
      this.pendingWrite = null
      if (pending.chunks.length === 1) conn.write(pending.chunks[0])
      else conn.writeSequence(pending.chunks)
      this.afterWrite(conn, pending.bytes, pending.callback)
    }
    const final = this.pendingFinal
    if (final !== null && this.pendingWrite === null) {
      this.pendingFinal = null
      this._final(final)
    }
    this.emit('connect')
    this.emit('ready')
  }

  /** @internal */
  [kData](data: Buffer): void {
    this.bytesRead += data.length
    if (this.idleTimer !== null) this.idleTimer.refresh()
    // The transport hands out views of buffers it never reuses, so they are pushed as they are.
    if (!this.push(data) && !this.readPaused && this.conn !== null) {
      this.readPaused = true
      this.conn.pauseProducing()
    }
  }

  /** @internal The peer's EOF: the readable side ends (and without allowHalfOpen, so does ours). */
  [kEof](): void {
    if (this.eofPushed) return
    this.eofPushed = true
    // Under Node's TLS the stream is ended by TLS itself, once it has written its last records (a
    // TLSSocket inherits allowHalfOpen from the stream and applies it at its own level). Ending it
    // here, at the peer's EOF, would cut those records: the TLS layer's writes would come after it.
    if (!this.allowHalfOpen && readByNodeTls(this)) this.allowHalfOpen = true
    this.push(null)
  }

  /** @internal Our FIN is out. */
  [kWriteClosed](): void {
    const final = this.pendingFinal
    this.pendingFinal = null
    final?.()
  }

  /** @internal The connection is closed (exactly once). */
  [kLost](reason: ConnectionLostReason): void {
    this.clearIdleTimer()
    this.drainWatching = false
    if (this.destroyed) return // our own destroy closed it
    if (reason instanceof ConnectionDone) {
      // An orderly close: the readable side ends once what was received is read; a write side that
      // is still open cannot be used any more.
      this[kEof]()
      if (this.pendingFinal !== null) this[kWriteClosed]() // our FIN went out with the close
      else if (!this.writableEnded || this.pendingWrite !== null) this.destroy()
      // else the writable side finished: autoDestroy closes the stream once the readable side is read
    } else if (reason instanceof ConnectionAborted) {
      // Our own side ended it (reactor.close(), or abortConnection() on the transport): like
      // net.Socket#destroy() without an error, so an app shutting down does not meet 'error'.
      this.destroy()
    } else if (reason instanceof ConnectionClosed) {
      this.destroy(reason) // a reset or another failure: 'error' (with `code` when a syscall said why)
    } else {
      // A stream listener threw inside a callback from the reactor: the reactor reported it already
      // (its onError); emitting it again as 'error' could crash a process with no listener.
      this.destroy()
    }
  }

  // ---- Internals -----------------------------------------------------------------------------

  /** After handing bytes to the transport: call back now, or once the transport drained. */
  private afterWrite(conn: IStreamTransport, bytes: number, callback: (err?: Error | null) => void): void {
    this.sent += bytes
    if (this.idleTimer !== null) this.idleTimer.refresh()
    // The transport's queue is at most what it held when last asked plus what was written since, so
    // it is asked (a native call) only once that bound passes the mark: small writes rarely ask.
    this.queueBound += bytes
    if (this.queueBound <= this.writableHighWaterMark) {
      callback()
      return
    }
    this.queueBound = conn.bufferSize
    if (this.queueBound <= this.writableHighWaterMark || !conn.connected) {
      callback()
      return
    }
    // Over the mark: the Writable buffers further writes (write() returns false) until this
    // callback runs. A pull producer is told after each drain of the transport's queue.
    this.pendingWrite = { chunks: [], bytes, callback }
    this.drainWatcher ??= {
      resumeProducing: () => this.onTransportDrained(),
      stopProducing: () => {
        this.drainWatching = false // the connection is lost; kLost decides what happens
      },
    }
    this.drainWatching = true
    conn.registerProducer(this.drainWatcher, false)
  }

  private onTransportDrained(): void {
    const conn = this.conn
    const pending = this.pendingWrite
    if (conn === null || pending === null) return
    this.queueBound = conn.bufferSize
    if (this.queueBound > this.writableHighWaterMark) return
    this.drainWatching = false
    conn.unregisterProducer()
    this.pendingWrite = null
    pending.callback()
  }

  private clearIdleTimer(): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer)
      this.idleTimer = null
    }
  }

  private isTcp(): boolean {
    const peer = this.peer()
    return peer !== null
  }

  private peer(): IPv4Address | IPv6Address | null {
    if (this.peerCache === null && this.conn !== null) this.peerCache = this.conn.getPeer()
    const peer = this.peerCache
    return peer instanceof IPv4Address || peer instanceof IPv6Address ? peer : null
  }

  private host(): IPv4Address | IPv6Address | null {
    if (this.hostCache === null && this.conn !== null) {
      try {
        this.hostCache = this.conn.getHost()
      } catch {
        return null // closed before anyone asked
      }
    }
    const host = this.hostCache
    return host instanceof IPv4Address || host instanceof IPv6Address ? host : null
  }
}

/**
 * The events a `SocketStream` emits and their arguments (those of `net.Socket` it has). `'data'`
 * gives Buffers (strings after `setEncoding()`, as for `net.Socket`, whose types say Buffer too);
 * `'error'` a `ConnectionLost` (with `code`) when the connection failed, or the stream's own errors.
 */
export interface SocketStreamEvents {
  /** The stream is closed: emitted once, last. */
  close: []
  /** The connection is up (with `'ready'` after it). */
  connect: []
  /** Bytes from the peer (a string after `setEncoding()`). */
  data: [data: Buffer]
  /** The write buffer has emptied: writing may resume. */
  drain: []
  /** The peer ended its side (EOF): no more `'data'`. */
  end: []
  /** The connection failed (a `ConnectionLost`, with `code`), or the stream's own error. */
  error: [err: Error]
  /** `end()` was called and every write was flushed to the core. */
  finish: []
  /** Reading was paused (`pause()`). */
  pause: []
  /** A readable stream was piped into this one. */
  pipe: [src: Readable]
  /** Data is there to `read()`. */
  readable: []
  /** The stream can be used (right after `'connect'`). */
  ready: []
  /** Reading was resumed (`resume()`). */
  resume: []
  /** No reading or writing for the `setTimeout()` time (the stream stays open). */
  timeout: []
  /** A readable stream was unpiped from this one. */
  unpipe: [src: Readable]
}

// The typed listener methods (as @types/node gives net.Socket), merged into the class's type; any
// other event name still takes any listener.
export interface SocketStream {
  /** As `net.Socket`'s `addListener`, typed for the stream's events (`SocketStreamEvents`). */
  addListener<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `addListener`, for any other event. */
  addListener(event: string | symbol, listener: (...args: any[]) => void): this
  /** As `net.Socket`'s `on`, typed for the stream's events (`SocketStreamEvents`). */
  on<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `on`, for any other event. */
  on(event: string | symbol, listener: (...args: any[]) => void): this
  /** As `net.Socket`'s `once`, typed for the stream's events (`SocketStreamEvents`). */
  once<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `once`, for any other event. */
  once(event: string | symbol, listener: (...args: any[]) => void): this
  /** As `net.Socket`'s `prependListener`, typed for the stream's events (`SocketStreamEvents`). */
  prependListener<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `prependListener`, for any other event. */
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this
  /** As `net.Socket`'s `prependOnceListener`, typed for the stream's events (`SocketStreamEvents`). */
  prependOnceListener<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `prependOnceListener`, for any other event. */
  prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this
  /** As `net.Socket`'s `off`, typed for the stream's events (`SocketStreamEvents`). */
  off<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `off`, for any other event. */
  off(event: string | symbol, listener: (...args: any[]) => void): this
  /** As `net.Socket`'s `removeListener`, typed for the stream's events (`SocketStreamEvents`). */
  removeListener<E extends keyof SocketStreamEvents>(event: E, listener: (...args: SocketStreamEvents[E]) => void): this
  /** As `net.Socket`'s `removeListener`, for any other event. */
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this
  /** Emits one of the stream's events with its arguments (typed by `SocketStreamEvents`). */
  emit<E extends keyof SocketStreamEvents>(event: E, ...args: SocketStreamEvents[E]): boolean
  /** Emits any other event. */
  emit(event: string | symbol, ...args: any[]): boolean
}

function familyName(address: Address | null): 'IPv4' | 'IPv6' | undefined {
  if (address instanceof IPv4Address) return 'IPv4'
  if (address instanceof IPv6Address) return 'IPv6'
  return undefined
}

/**
 * Whether Node's TLS reads this stream: a TLSSocket over a Duplex wraps it in Node's internal
 * JSStreamSocket, which reads it through a 'data' listener named `ondata` (Node 20's
 * lib/internal/js_stream_socket.js). Hand-written because Node exposes no public way to tell; a miss
 * only means the stream ends at the peer's EOF, as it would without TLS.
 */
function readByNodeTls(stream: SocketStream): boolean {
  return stream.listeners('data').some((listener) => listener.name === 'ondata')
}
