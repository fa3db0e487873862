// Outbound connections: reactor.connectTCP / connectUNIX. The connect runs in the core (a
// non-blocking connect completed on the writable edge, SO_ERROR read there); this side checks the
// arguments, looks names up with dns.lookup, keeps the timeout and the AbortSignal, and builds the
// protocol when the core reports the connection.
import * as dns from 'node:dns'
import * as net from 'node:net'
import type { Address } from './address'
import { AddressFamily } from './constants'
import { ConnectError, InvalidAddressError, invalidArgType, type ErrorTarget, type TLSError } from './errors'
import { clientContext, type TlsClientContext, type TlsClientOptions, type TlsInfo } from './tls-options'
import { establish } from './establish'
import type { ConnectEntry, ReactorHost } from './host'
import type { IProtocol, IProtocolFactory } from './interfaces'
import { encodeProxyHeader, type ProxyHeaderOptions } from './proxy-header'
import { abortSignalArgument, armTimer, factoryArgument, optionsArgument, portArgument, stringArgument, timeoutArgument, unixPathArgument } from './validate'

/** Options of `connectTCP` and `connectUNIX`. */
export interface ConnectOptions {
  /** Milliseconds for the name lookup and the connect together (default 30000; Infinity, or more
   *  than 2^31-1, for none). */
  timeout?: number | undefined
  /** TCP only: the local [host, port] to connect from (host an IP literal; port 0 for any). */
  bindAddress?: [host: string, port: number] | undefined
  /** Aborts the connect: the promise rejects with the signal's reason and nothing is left open. */
  signal?: AbortSignal | undefined
  /** A PROXY protocol header to send first, before the protocol's connectionMade (HAProxy's
   *  send-proxy, for an upstream that expects one). */
  proxyHeader?: ProxyHeaderOptions | undefined
  /** TCP only: connect with TLS. The handshake runs in the core; `connectionMade` (and the
   *  promise) come after it, with `transport.tlsInfo` set. A failed handshake rejects with a
   *  `TLSError` (`code`, `alert`). The name verified (and sent as SNI) is `servername`, else the
   *  host given. Reusing the same options object lets later connections resume the session. */
  tls?: TlsClientOptions | undefined
}

const DEFAULT_TIMEOUT = 30_000

/** The target of one connect, checked synchronously. */
export type ConnectTarget = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string }

/** A connect's options once checked: `timeout` null means no deadline. */
export interface CheckedConnectOptions {
  timeout: number | null
  bindAddress: [host: string, port: number] | undefined
  signal: AbortSignal | undefined
  /** The encoded PROXY header to send first. */
  firstBytes: Uint8Array | null
  /** The built TLS context (a connect with TLS). */
  tls: TlsClientContext | null
}

/** Checks a connect call's arguments in the documented order; throws before anything is opened. */
export function checkConnectArgs(target: ConnectTarget, factory: unknown, options: ConnectOptions | undefined): CheckedConnectOptions {
  if (target.kind === 'tcp') {
    stringArgument(target.host, 'connectTCP: host')
    portArgument(target.port, 'connectTCP: port')
  } else {
    unixPathArgument(target.path, 'connectUNIX: path')
  }
  factoryArgument(factory, target.kind === 'tcp' ? 'connectTCP' : 'connectUNIX')
  const { timeout = DEFAULT_TIMEOUT, bindAddress, signal, proxyHeader, tls } = optionsArgument(options, 'connect: options')
  const deadline = timeoutArgument(timeout, 'connect: options.timeout')
  if (signal !== undefined) abortSignalArgument(signal, 'connect: options.signal')
  if (bindAddress !== undefined) {
    if (target.kind !== 'tcp') throw invalidArgType('connectUNIX: bindAddress is for TCP only')
    if (!Array.isArray(bindAddress) || bindAddress.length !== 2) throw invalidArgType('connectTCP: options.bindAddress must be a [host, port] array')
    stringArgument(bindAddress[0], 'connectTCP: options.bindAddress host')
    portArgument(bindAddress[1], 'connectTCP: options.bindAddress port')
    if (net.isIP(bindAddress[0]) === 0) throw new InvalidAddressError(`connectTCP: bindAddress host ${JSON.stringify(bindAddress[0])} is not an IP literal`, bindAddress[0])
  }
  const firstBytes = proxyHeader === undefined ? null : encodeProxyHeader(proxyHeader, 'connect: options.proxyHeader')
  if (tls !== undefined && target.kind !== 'tcp') throw invalidArgType('connectUNIX: tls is for connectTCP only (use startTLS on a UNIX connection)')
  if (tls !== undefined && firstBytes !== null) throw invalidArgType('connectTCP: proxyHeader and tls cannot be combined')
  const context = tls === undefined ? null : clientContext(tls, 'connect: options.tls')
  return { timeout: deadline, bindAddress, signal, firstBytes, tls: context }
}

/**
 * One connect in progress. It settles exactly once: with the protocol (or undefined when the
 * factory declined), or with a ConnectError, the signal's reason, or a callback's exception.
 */
export class PendingConnect implements ConnectEntry {
  private id = -1
  private timer: NodeJS.Timeout | null = null
  private settled = false
  /** The reactor holds Node's loop for this connect (released when it settles). */
  private holding = false
  private readonly onAbort = (): void => this.abort(this.options.signal?.reason)
  readonly promise: Promise<IProtocol | undefined>
  private resolve!: (p: IProtocol | undefined) => void
  private reject!: (err: unknown) => void
  private readonly family: AddressFamily
  /** Where the connect goes, as its errors say: the host as given until a lookup resolved it. */
  private where: ErrorTarget

  constructor(
    private readonly host: ReactorHost,
    private readonly target: ConnectTarget,
    private readonly factory: IProtocolFactory,
    private readonly options: CheckedConnectOptions,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
    this.where = target.kind === 'tcp' ? { address: target.host, port: target.port } : { path: target.path }
    this.family = target.kind === 'unix' ? AddressFamily.UNIX : AddressFamily.INET
    const { signal, timeout } = options
    if (signal?.aborted) {
      this.fail(signal.reason)
      return
    }
    signal?.addEventListener('abort', this.onAbort, { once: true })
    host.hold() // a connect in progress keeps the process alive, as Node's does
    this.holding = true
    this.timer = armTimer(timeout, () => this.abort(ConnectError.timedOut(this.where, timeout as number)))
    if (target.kind === 'unix') this.start(() => host.native.connectUnix(target.path))
    else if (net.isIP(target.host) !== 0) this.startTcp(target.host, target.port)
    else this.lookup(target.host, target.port)
  }

  private lookup(host: string, port: number): void {
    dns.lookup(host, (err, address) => {
      if (this.settled) return
      if (err) {
        const code = err.code ?? 'ENOTFOUND'
        this.fail(new ConnectError(code, `getaddrinfo ${code} ${host}`, { syscall: 'getaddrinfo', hostname: host, port }))
      }
      else this.startTcp(address, port)
    })
  }

  private startTcp(address: string, port: number): void {
    this.where = { address, port }
    const bind = this.options.bindAddress
    const tls = this.options.tls
    if (tls !== null) {
      // The name verified is the host as given (a name, or the IP literal), unless servername says otherwise.
      const name = this.target.kind === 'tcp' ? this.target.host : address
      this.start(() => this.host.native.connectTcpTls(address, port, bind?.[0], bind?.[1], tls, name))
      return
    }
    this.start(() => this.host.native.connectTcp(address, port, bind?.[0], bind?.[1]))
  }

  private start(connect: () => number): void {
    try {
      this.id = connect()
    } catch (err) {
      this.fail(ConnectError.fromNative(err, this.where))
      return
    }
    this.host.register('connect', this.id, this)
  }

  /** @internal EV_CONNECTED: build the protocol and make the connection (`tls`: the handshake is done). */
  onConnected(peer: () => Address, tls: TlsInfo | null = null): void {
    if (this.settled) return
    this.host.forget('connect', this.id, this)
    let address: Address
    let protocol: IProtocol | undefined
    try {
      address = peer()
    } catch (err) {
      this.host.closeUnwanted(this.id)
      return this.fail(err)
    }
    try {
      const family = 'flowInfo' in address ? AddressFamily.INET6 : this.family
      protocol = establish(this.host, this.id, family, this.factory, address, 'connected', null, this.options.firstBytes, tls)
    } catch (err) {
      return this.fail(err) // establish closed the connection
    }
    this.succeed(protocol)
  }

  /** @internal EV_CLOSED for a connect in progress: the core reports why it failed (`tls`: its
   *  TLS handshake failed: the promise rejects with that TLSError). */
  onFailed(errno: number, tls?: TLSError): void {
    if (this.settled) return
    this.host.forget('connect', this.id, this)
    if (tls !== undefined) return this.fail(tls)
    this.fail(ConnectError.fromErrno(errno, this.where))
  }

  /** Timeout, abort or reactor close: close the socket, reject with `reason`. */
  abort(reason: unknown): void {
    if (this.settled) return
    if (this.id >= 0) {
      this.host.forget('connect', this.id, this)
      this.host.native.abort(this.id)
    }
    this.fail(reason)
  }

  private succeed(protocol: IProtocol | undefined): void {
    this.settle()
    this.resolve(protocol)
  }

  private fail(err: unknown): void {
    this.settle()
    this.reject(err)
  }

  private settle(): void {
    this.settled = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.options.signal?.removeEventListener('abort', this.onAbort)
    if (this.holding) {
      this.holding = false
      this.host.release()
    }
  }
}
