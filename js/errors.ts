// The package's error classes (Twisted's names) and the helpers that give syscall errors Node's shape:
// `code` ('EBADF') and a negative `errno` (-9), as Node's own SystemErrors have, with `syscall` and
// the `address`/`port` or `path` a call was about. Every class here has a string `code`: an errno
// name where a syscall said why, else a stable 'ERR_*' of its own. Messages that name families and
// socket types take the names from js/constants.ts, the one table of them (the core and the
// binding pass numbers only).
import { constants } from 'node:os'
import { getSystemErrorMap, getSystemErrorName } from 'node:util'
import { familyName, socketTypeName } from './constants'

/** An Error that came from a syscall (or is reported like one). */
export interface ErrnoError extends Error {
  /** The errno's name ('EBADF'), or a Node-style code ('ERR_...') for an error no syscall made. */
  code: string
  /** Node's errno: negative ('EBADF' is -9); absent where `code` names no errno. */
  errno?: number
  /** What failed: the syscall, or the package's call that made it ('listenTcp', 'take', ...). */
  syscall?: string | undefined
  /** The IP address a call was about (with `port`), as Node's SystemError has it. */
  address?: string | undefined
  /** The port a call was about (with `address`). */
  port?: number | undefined
  /** The UNIX socket path a call was about (abstract names start with "\0"). */
  path?: string | undefined
  /** The descriptor a call was about. */
  fd?: number | undefined
}

/** What a syscall error was about: an IP address and port, a UNIX socket path, or a descriptor. */
export type ErrorTarget = { address: string; port: number } | { path: string } | { fd: number }

/** What an error may say besides its code and message. */
export interface ErrorDetails {
  syscall?: string | undefined
  address?: string | undefined
  port?: number | undefined
  path?: string | undefined
  fd?: number | undefined
}

/**
 * A target as messages show it: 127.0.0.1:8080, [::1]:8080, '/run/app.sock', '@name' (an abstract
 * name, whose leading NUL cannot be printed), fd 9.
 */
export function targetLabel(target: ErrorTarget): string {
  if ('fd' in target) return `fd ${target.fd}`
  if ('path' in target) return `'${target.path.startsWith('\0') ? `@${target.path.slice(1)}` : target.path}'`
  return target.address.includes(':') ? `[${target.address}]:${target.port}` : `${target.address}:${target.port}`
}

/** "an AF_INET socket", or "a socket of family 17" for a family without a name. */
function familySocket(family: number): string {
  const name = familyName(family)
  return name === String(family) ? `a socket of family ${family}` : `an ${name} socket`
}

/** "a SOCK_DGRAM socket", or "a socket of type 10" for a type without a name. */
function typedSocket(type: number): string {
  const name = socketTypeName(type)
  return name === String(type) ? `a socket of type ${type}` : `a ${name} socket`
}

/** A list as prose: "A", "A or B", "A, B or C". */
function alternatives(names: string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`
}

/** The family argument is not one the method supports, or differs from the socket's actual family. */
export class UnsupportedAddressFamily extends Error {
  static {
    this.prototype.name = 'UnsupportedAddressFamily'
  }
  /** Always 'ERR_UNSUPPORTED_ADDRESS_FAMILY'. */
  readonly code = 'ERR_UNSUPPORTED_ADDRESS_FAMILY'
  /** The family argument given. */
  readonly family: number
  /** Its name ('AF_INET6'), or the number as a string when it has none. */
  readonly familyName: string
  /** The socket's own family, when the error is a mismatch between the two. */
  declare readonly actualFamily?: number
  /** Its name ('AF_INET'), or the number as a string when it has none. */
  declare readonly actualFamilyName?: string
  /** The descriptor, when the error is about one. */
  declare readonly fd?: number

  constructor(family: number, actualFamily?: number, message?: string, details: { fd?: number } = {}) {
    super(
      message ??
        (actualFamily === undefined
          ? `address family ${familyName(family)} is not supported here`
          : `the socket is ${familySocket(actualFamily)}, not ${familyName(family)} as given`),
    )
    this.family = family
    this.familyName = familyName(family)
    if (actualFamily !== undefined) {
      this.actualFamily = actualFamily
      this.actualFamilyName = familyName(actualFamily)
    }
    if (details.fd !== undefined) this.fd = details.fd
  }

  /** `method` does not take `family` (a number, checked before the fd is looked at). */
  static unsupported(method: string, family: number, supported: readonly number[]): UnsupportedAddressFamily {
    const named = familyName(family)
    const shown = named === String(family) ? named : `${named} (${family})`
    return new UnsupportedAddressFamily(family, undefined, `${method}: address family ${shown} is not supported; use ${alternatives(supported.map(familyName))}`)
  }

  /** The socket behind `fd` is of family `actual`, not `family` as given to `method`. */
  static mismatch(method: string, fd: number, family: number, actual: number): UnsupportedAddressFamily {
    return new UnsupportedAddressFamily(family, actual, `${method}: fd ${fd} is ${familySocket(actual)}, not ${familyName(family)} as given`, { fd })
  }
}

/** The socket's type (SO_TYPE) is not the one the method needs. */
export class UnsupportedSocketType extends Error {
  static {
    this.prototype.name = 'UnsupportedSocketType'
  }
  /** Always 'ERR_UNSUPPORTED_SOCKET_TYPE'. */
  readonly code = 'ERR_UNSUPPORTED_SOCKET_TYPE'
  /** The socket's actual SO_TYPE number. */
  readonly socketType: number
  /** Its name ('SOCK_DGRAM'), or the number as a string when it has none. */
  readonly socketTypeName: string
  /** The descriptor, when the error is about one. */
  declare readonly fd?: number

  constructor(socketType: number, message?: string, details: { fd?: number } = {}) {
    super(message ?? `socket type ${socketTypeName(socketType)} is not supported here`)
    this.socketType = socketType
    this.socketTypeName = socketTypeName(socketType)
    if (details.fd !== undefined) this.fd = details.fd
  }

  /** The socket behind `fd` is of type `actual`; `method` needs `needed`. */
  static refused(method: string, fd: number, actual: number, needed: number): UnsupportedSocketType {
    return new UnsupportedSocketType(actual, `${method}: fd ${fd} is ${typedSocket(actual)}; ${method} needs ${socketTypeName(needed)}`, { fd })
  }
}

/** A datagram address that is malformed, not an IP literal, or of the other family than the port. */
export class InvalidAddressError extends Error {
  static {
    this.prototype.name = 'InvalidAddressError'
  }
  /** Always 'ERR_INVALID_ADDRESS'. */
  readonly code = 'ERR_INVALID_ADDRESS'
  /** The address as given, when there was one. */
  declare readonly address?: unknown

  constructor(message: string, address?: unknown) {
    super(message)
    if (address !== undefined) this.address = address
  }
}

/** A datagram too large for the socket (EMSGSIZE). */
export class MessageLengthError extends Error implements ErrnoError {
  static {
    this.prototype.name = 'MessageLengthError'
  }
  code = 'EMSGSIZE'
  errno: number = errnoOf('EMSGSIZE')! // every Linux has it

  constructor(message = 'message too long for the socket') {
    super(message)
  }
}

/** Base of the reasons given to `connectionLost`. `code`: 'ERR_CONNECTION_CLOSED' here; each
 *  subclass has its own. */
export class ConnectionClosed extends Error {
  static {
    this.prototype.name = 'ConnectionClosed'
  }
  /** 'ERR_CONNECTION_CLOSED', or the subclass's code (see each). */
  readonly code: string

  constructor(message = 'connection closed', code = 'ERR_CONNECTION_CLOSED') {
    super(message)
    this.code = code
  }
}

/** An orderly close: the peer's EOF, or our own `loseConnection()`. `code` 'ERR_CONNECTION_DONE'. */
export class ConnectionDone extends ConnectionClosed {
  static {
    this.prototype.name = 'ConnectionDone'
  }
  constructor(message = 'connection was closed cleanly') {
    super(message, 'ERR_CONNECTION_DONE')
  }
}

/** A close that was not orderly. `code`/`errno` say why when a syscall reported it ('ECONNRESET',
 *  'ETIMEDOUT', ...); without one, `code` is 'ERR_CONNECTION_LOST' and there is no `errno`. */
export class ConnectionLost extends ConnectionClosed {
  static {
    this.prototype.name = 'ConnectionLost'
  }
  /** Node's (negative) errno of `code`, when `code` is an errno's name. */
  declare readonly errno?: number

  constructor(message = 'connection was lost in a non-clean fashion', code = 'ERR_CONNECTION_LOST') {
    super(message, code)
    const errno = errnoOf(code)
    if (errno !== undefined) this.errno = errno
  }

  /** The reason for a close the core reported with a (positive) errno. */
  static fromErrno(errno: number): ConnectionLost {
    const code = errnoName(errno)
    return new ConnectionLost(`connection lost: ${code} (${errnoMessage(errno)})`, code)
  }
}

/**
 * A TLS session failed: its handshake (a certificate refused, a name with no certificate, no
 * common version or ALPN protocol, a missing or refused client certificate, a timeout), or later
 * (a broken record, a renegotiation attempt pushed too far), or the peer ended the connection
 * without close_notify (`code` 'ERR_TLS_TRUNCATED'). `code` is one of ERR_TLS_HANDSHAKE,
 * ERR_TLS_CERT_VERIFY, ERR_TLS_ALERT (the peer refused us), ERR_TLS_PROTOCOL, ERR_TLS_TRUNCATED,
 * ERR_TLS_TIMEOUT, ERR_TLS_INTERNAL; `alert` the TLS alert that went with it ('unknown_ca',
 * 'certificate_expired', 'unrecognized_name', 'certificate_required', …; null for none), sent by
 * the peer when `alertReceived`, else by us.
 */
export class TLSError extends ConnectionLost {
  static {
    this.prototype.name = 'TLSError'
  }
  /** The TLS alert that went with the failure ('unknown_ca', 'certificate_expired', ...), or null. */
  readonly alert: string | null
  /** Whether the peer sent `alert` (true) or we did (false). */
  readonly alertReceived: boolean

  constructor(code: string, message: string, alert: string | null = null, alertReceived = false) {
    super(message, code)
    this.alert = alert
    this.alertReceived = alertReceived
  }
}

/** Our own `abortConnection()` (or `reactor.close()`) ended the connection. `code`
 *  'ERR_CONNECTION_ABORTED'. */
export class ConnectionAborted extends ConnectionLost {
  static {
    this.prototype.name = 'ConnectionAborted'
  }
  constructor(message = 'connection was aborted') {
    super(message, 'ERR_CONNECTION_ABORTED')
  }
}

/** An outbound connection (`connectTCP` / `connectUNIX`) could not be made. `code` is Node's:
 *  'ECONNREFUSED', 'ETIMEDOUT' (the timeout), 'ENETUNREACH', 'EHOSTUNREACH', 'ENOENT' (a UNIX path),
 *  'ENOTFOUND' (name lookup), …; `errno` where a syscall failed; `syscall` ('connect',
 *  'getaddrinfo'); where it was going: `address` and `port` (TCP; `hostname` for a name that
 *  was not found), or `path` (UNIX; also as `address`, as Node has it). */
export class ConnectError extends Error {
  static {
    this.prototype.name = 'ConnectError'
  }
  /** Node's code: 'ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', ... */
  readonly code: string
  /** Node's (negative) errno of `code`, where a syscall failed. */
  declare readonly errno?: number
  /** The call that failed ('connect', 'getaddrinfo'), when known. */
  declare readonly syscall?: string
  /** The host (or UNIX path) the connect was made to, when known. */
  declare readonly address?: string
  /** The port connected to (TCP), when known. */
  declare readonly port?: number
  /** The UNIX socket path connected to (also in `address`, as Node has it). */
  declare readonly path?: string
  /** The name that was not found (`code` 'ENOTFOUND'). */
  declare readonly hostname?: string

  /** @internal Made by `connectTCP` / `connectUNIX`. */
  constructor(code: string, message: string, details: ErrorDetails & { hostname?: string } = {}) {
    super(message)
    this.code = code
    const errno = errnoOf(code)
    if (errno !== undefined) this.errno = errno
    assignDetails(this, details)
    if (details.hostname !== undefined) this.hostname = details.hostname
  }

  /** @internal For a (positive) errno the core reported, connecting to `target`. */
  static fromErrno(errno: number, target: ErrorTarget): ConnectError {
    const code = errnoName(errno)
    return new ConnectError(code, `connect ${code} ${targetLabel(target)}: ${errnoMessage(errno)}`, connectDetails(target))
  }

  /** @internal No connection to `target` within `ms`. */
  static timedOut(target: ErrorTarget, ms: number): ConnectError {
    return new ConnectError('ETIMEDOUT', `connect ETIMEDOUT ${targetLabel(target)}: no connection within ${ms} ms`, connectDetails(target))
  }

  /** @internal For a connect the binding refused to start: a syscall's failure as a ConnectError,
   *  anything else (an error without an errno) as `nativeError` gives it. */
  static fromNative(err: unknown, target: ErrorTarget): unknown {
    const failure = nativeError(err)
    const errno = errnoOf(codeOf(failure) ?? '')
    return errno === undefined ? failure : ConnectError.fromErrno(-errno, target)
  }
}

/** A connect's target as properties: a UNIX path is also the `address`, as in Node's net errors. */
function connectDetails(target: ErrorTarget): ErrorDetails {
  return 'path' in target ? { syscall: 'connect', address: target.path, path: target.path } : { syscall: 'connect', ...target }
}

/** Sets the details that are given (an own property each, as Node's SystemError has them). */
function assignDetails(err: Error, details: ErrorDetails): void {
  for (const key of ['syscall', 'address', 'port', 'path', 'fd'] as const) {
    if (details[key] !== undefined) (err as unknown as Record<string, unknown>)[key] = details[key]
  }
}

/** Node's errno for a code: negative, e.g. -9 for 'EBADF'; undefined for a code that is no errno. */
export function errnoOf(code: string): number | undefined {
  return Object.hasOwn(constants.errno, code) ? -(constants.errno as Record<string, number>)[code] : undefined
}

/** The code for a positive errno from the core, e.g. 104 → 'ECONNRESET'. */
function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno)
  } catch {
    return `E${errno}` // not a valid errno at all; keep something printable
  }
}

let systemErrorMap: Map<number, [string, string]> | null = null

function errnoMessage(errno: number): string {
  systemErrorMap ??= getSystemErrorMap()
  return systemErrorMap.get(-errno)?.[1] ?? `errno ${errno}`
}

/** An Error with `code` and `errno`, as Node's SystemErrors have, and the `details` given. */
export function errnoError(code: string, message: string, details: ErrorDetails = {}): ErrnoError {
  const err = new Error(message) as ErrnoError
  err.code = code
  const errno = errnoOf(code)
  if (errno !== undefined) err.errno = errno
  assignDetails(err, details)
  return err
}

/** An Error for a positive errno the core reported (an event's, or an adoption's refusal). */
export function errorFromErrno(errno: number, context?: string, details: ErrorDetails = {}): ErrnoError {
  const code = errnoName(errno)
  const text = `${code}: ${errnoMessage(errno)}`
  return errnoError(code, context === undefined ? text : `${context}: ${text}`, details)
}

/**
 * A syscall error about `target`: its message gains the target ("EADDRINUSE: address already in
 * use, listenTcp 127.0.0.1:8080"; "ENOENT: no such file or directory, take '/run/app.handoff'";
 * "EBADF: bad file descriptor, close fd 9") and it gets `address` and `port`, `path` (as Node's
 * SystemError has them) or `fd`. Anything that is not a syscall error (no `syscall`: a
 * TypeError, a RangeError, ...) is returned as it is.
 */
export function atTarget<E>(err: E, target: ErrorTarget): E {
  if (!(err instanceof Error) || codeOf(err) === undefined || typeof (err as { syscall?: unknown }).syscall !== 'string') return err
  if ('path' in err || 'address' in err || 'fd' in err) return err // already says what it was about
  err.message = `${err.message} ${targetLabel(target)}`
  assignDetails(err, target)
  return err
}

/** The code of an error (ours, Node's or the binding's), if it has one. */
export function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/**
 * The one place a binding failure becomes the package's error. The binding throws Errors that
 * already carry Node's shape (`code`, negative `errno`, `syscall`; crates/node/src/error.rs), except
 * where it could not build its error object: then the code is 'GenericFailure' and the message
 * starts with the real code, which is recovered here. Codes with a class of their own get it:
 * 'ERR_INVALID_ADDRESS' (and, for a call that took an address, 'EAFNOSUPPORT') an
 * InvalidAddressError, 'EMSGSIZE' a MessageLengthError. Anything else is returned as is.
 */
export function nativeError(err: unknown, address?: unknown): unknown {
  if (!(err instanceof Error)) return err
  const failure = err as Error & { code?: unknown; errno?: unknown }
  if (failure.code === 'GenericFailure') {
    const code = /^([A-Z][A-Z0-9_]*): /.exec(err.message)?.[1]
    if (code !== undefined) {
      failure.code = code
      const errno = errnoOf(code)
      if (errno !== undefined && failure.errno === undefined) failure.errno = errno
    }
  }
  switch (failure.code) {
    case 'ERR_INVALID_ADDRESS':
      return new InvalidAddressError(err.message, address)
    case 'EAFNOSUPPORT': // an address of the other family, when the kernel caught it first
      return address === undefined ? err : new InvalidAddressError(err.message, address)
    case 'EMSGSIZE':
      return new MessageLengthError(err.message)
    default:
      return err
  }
}

/** Calls the binding; what it throws is shaped by `nativeError`. */
export function callNative<T>(call: () => T, address?: unknown): T {
  try {
    return call()
  } catch (err) {
    throw nativeError(err, address)
  }
}

/** Calls the binding for a call about `target` (an address to bind or connect to, a path, an fd):
 *  what it throws is shaped by `nativeError`, and a syscall error says where (`atTarget`). */
export function callNativeAt<T>(target: ErrorTarget, call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw atTarget(nativeError(err), target)
  }
}

/** What every call on a closed reactor throws (and what connects in progress reject with). */
export function reactorClosed(): ErrnoError {
  return errnoError('ERR_REACTOR_CLOSED', 'the reactor is closed')
}

/** A call made in a state that does not allow it (e.g. `relay` on a transport that is closing). */
export function invalidState(message: string): ErrnoError {
  return errnoError('ERR_INVALID_STATE', message)
}

/** A TypeError with Node's code for a bad argument type. */
export function invalidArgType(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' })
}

/** A TypeError with Node's code for an argument of the right type and a wrong value ('' for a path). */
export function invalidArgValue(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' })
}

/** A RangeError with Node's code for an argument out of range. */
export function outOfRange(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' })
}
