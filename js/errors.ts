// The package's error classes (Twisted's names) and the helpers that give syscall errors Node's shape:
// `code` ('EBADF') and a negative `errno` (-9), as Node's own SystemErrors have.
import { constants } from 'node:os'
import { getSystemErrorMap, getSystemErrorName } from 'node:util'

/** An Error that came from a syscall (or is reported like one). */
export interface ErrnoError extends Error {
  code: string
  errno?: number
}

/** The family argument is not one the method supports, or differs from the socket's actual family. */
export class UnsupportedAddressFamily extends Error {
  static {
    this.prototype.name = 'UnsupportedAddressFamily'
  }
  /** The family argument given. */
  readonly family: number
  /** The socket's own family, when the error is a mismatch between the two. */
  declare readonly actualFamily?: number

  constructor(family: number, actualFamily?: number, message?: string) {
    super(
      message ??
        (actualFamily === undefined
          ? `address family ${family} is not supported here`
          : `the socket's address family is ${actualFamily}, not ${family} as given`),
    )
    this.family = family
    if (actualFamily !== undefined) this.actualFamily = actualFamily
  }
}

/** The socket's type (SO_TYPE) is not the one the method needs. */
export class UnsupportedSocketType extends Error {
  static {
    this.prototype.name = 'UnsupportedSocketType'
  }
  /** The socket's actual SO_TYPE number. */
  readonly socketType: number

  constructor(socketType: number, message?: string) {
    super(message ?? `socket type ${socketType} is not supported here`)
    this.socketType = socketType
  }
}

/** A datagram address that is malformed, not an IP literal, or of the other family than the port. */
export class InvalidAddressError extends Error {
  static {
    this.prototype.name = 'InvalidAddressError'
  }
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

/** Base of the reasons given to `connectionLost`. */
export class ConnectionClosed extends Error {
  static {
    this.prototype.name = 'ConnectionClosed'
  }
  constructor(message = 'connection closed') {
    super(message)
  }
}

/** An orderly close: the peer's EOF, or our own `loseConnection()`. */
export class ConnectionDone extends ConnectionClosed {
  static {
    this.prototype.name = 'ConnectionDone'
  }
  constructor(message = 'connection was closed cleanly') {
    super(message)
  }
}

/** A close that was not orderly; `code`/`errno` say why when a syscall reported it. */
export class ConnectionLost extends ConnectionClosed {
  static {
    this.prototype.name = 'ConnectionLost'
  }
  declare readonly code?: string
  declare readonly errno?: number

  constructor(message = 'connection was lost in a non-clean fashion', code?: string) {
    super(message)
    if (code !== undefined) {
      this.code = code
      const errno = errnoOf(code)
      if (errno !== undefined) this.errno = errno
    }
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
  declare readonly code: string
  readonly alert: string | null
  readonly alertReceived: boolean

  constructor(code: string, message: string, alert: string | null = null, alertReceived = false) {
    super(message, code)
    this.alert = alert
    this.alertReceived = alertReceived
  }
}

/** Our own `abortConnection()` (or `reactor.close()`) ended the connection. */
export class ConnectionAborted extends ConnectionLost {
  static {
    this.prototype.name = 'ConnectionAborted'
  }
  constructor(message = 'connection was aborted') {
    super(message)
  }
}

/** An outbound connection (`connectTCP` / `connectUNIX`) could not be made. `code` is Node's:
 *  'ECONNREFUSED', 'ETIMEDOUT' (the timeout), 'ENETUNREACH', 'EHOSTUNREACH', 'ENOENT' (a UNIX path),
 *  'ENOTFOUND' (name lookup), …; `errno` where a syscall failed. */
export class ConnectError extends Error {
  static {
    this.prototype.name = 'ConnectError'
  }
  readonly code: string
  declare readonly errno?: number
  declare readonly address?: string
  declare readonly port?: number

  constructor(code: string, message: string, where?: { address?: string; port?: number }) {
    super(message)
    this.code = code
    const errno = errnoOf(code)
    if (errno !== undefined) this.errno = errno
    if (where?.address !== undefined) this.address = where.address
    if (where?.port !== undefined) this.port = where.port
  }

  /** For a (positive) errno the core reported. */
  static fromErrno(errno: number, target: string, where?: { address?: string; port?: number }): ConnectError {
    const code = errnoName(errno)
    return new ConnectError(code, `connect ${code} ${target}: ${errnoMessage(errno)}`, where)
  }

  /** For a connect the binding refused to start: a syscall's failure as a ConnectError, anything
   *  else (an error without an errno) as `nativeError` gives it. */
  static fromNative(err: unknown, target: string, where?: { address?: string; port?: number }): unknown {
    const failure = nativeError(err)
    const errno = errnoOf(codeOf(failure) ?? '')
    return errno === undefined ? failure : ConnectError.fromErrno(-errno, target, where)
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

/** An Error with `code` and `errno`, as Node's SystemErrors have. */
export function errnoError(code: string, message: string): ErrnoError {
  const err = new Error(message) as ErrnoError
  err.code = code
  const errno = errnoOf(code)
  if (errno !== undefined) err.errno = errno
  return err
}

/** An Error for a positive errno the core reported in an event (EV_CLOSED, EV_DATAGRAM_ERROR). */
export function errorFromErrno(errno: number, context?: string): ErrnoError {
  const code = errnoName(errno)
  const text = `${code}: ${errnoMessage(errno)}`
  return errnoError(code, context === undefined ? text : `${context}: ${text}`)
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
