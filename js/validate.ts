// Argument checks: one policy per kind of argument (descriptor, port, timeout, integer within bounds,
// UNIX path, ...), used by every public entry point, so that the same value gets the same error
// everywhere. Each check throws synchronously, before anything is opened, and returns the value in
// the form the rest of the layer (and the binding) takes.
import { errnoError, invalidArgType, invalidArgValue, outOfRange, targetLabel, UnsupportedAddressFamily } from './errors'
import type { IDatagramProtocol, IProtocolFactory } from './interfaces'

/** How a value is named in messages: its type, or its class for objects. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return `an instance of ${className(value, 'Object')}`
  return `type ${typeof value}`
}

/**
 * An object's class name, or `fallback`. Messages are built from what the caller passed, which may
 * be hostile: a `constructor` getter that throws, or a name that is not a string, must not turn
 * the typed error being built into another one.
 */
export function className(value: object, fallback: string): string {
  try {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor
    return ctor === undefined || ctor === null ? fallback : functionName(ctor, fallback)
  } catch {
    return fallback
  }
}

/**
 * A value as messages show it: strings quoted, numbers and the like as `String` gives them, objects
 * and functions by their type. Never throws: `String(value)` would call an object's own
 * `toString` or `Symbol.toPrimitive`, and `{ toString: {} }` makes that a TypeError of its own.
 */
export function shown(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'bigint':
      return `${value}n`
    case 'object':
    case 'function':
      return describe(value)
    default:
      return String(value) // number, boolean, undefined, symbol: no user code runs
  }
}

// ---- Descriptors -------------------------------------------------------------------------------

/** The largest descriptor number: fds are C ints. */
export const MAX_FD = 0x7fffffff

/**
 * The type half of the fd rule: a non-negative integer Number, else a TypeError (the contract's
 * adoption rule 1, applied to every fd argument). Checked as a double, so nothing wraps.
 */
export function fdArgument(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalidArgType(`${what} must be a non-negative integer, not ${shown(value)}`)
  }
  return value
}

/**
 * The range half: a number no descriptor can have (above 2^31-1) is, like any number no open fd
 * has, EBADF. Kept apart from the type half because adoption checks the family in between.
 * Without it a binding that takes a C int would wrap 2**32 + 1 to fd 1.
 */
export function fdInRange(fd: number, what: string): number {
  if (fd > MAX_FD) throw errnoError('EBADF', `${what}: fd ${fd} is not open (descriptors are at most ${MAX_FD})`)
  return fd
}

/** Both halves of the fd rule. */
export function checkFd(value: unknown, what: string): number {
  return fdInRange(fdArgument(value, what), what)
}

// ---- Numbers -----------------------------------------------------------------------------------

/** An IP port: a Number (else TypeError), an integer in 0..65535 (else RangeError). */
export function portArgument(value: unknown, what: string): number {
  if (typeof value !== 'number') throw invalidArgType(`${what} must be a number, not ${describe(value)}`)
  if (!isPort(value)) throw outOfRange(`${what} must be an integer in 0..65535, not ${value}`)
  return value
}

export function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535
}

/**
 * A size, count or other bounded integer (buffer sizes, maxPacketSize, TTL, backlog, uids): not an
 * integer → TypeError; outside `min..max` → RangeError, whose message gives both bounds.
 */
export function integerArgument(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalidArgType(`${what} must be an integer, not ${shown(value)}`)
  }
  if (value < min || value > max) throw outOfRange(`${what} must be an integer in ${min}..${max}, not ${value}`)
  return value
}

/** The largest u32: counts the core keeps as 32-bit numbers. */
export const MAX_U32 = 0xffffffff

/**
 * A limit on a count (maxSessions, responses): an integer in 1..2^32-1, or `Infinity` for none
 * (returned as null). Not a number → TypeError; NaN or a fraction → TypeError (as
 * `integerArgument`); out of range → RangeError.
 */
export function limitArgument(value: unknown, what: string): number | null {
  if (value === Infinity) return null
  return integerArgument(value, what, 1, MAX_U32)
}

/**
 * A kernel buffer size in bytes (SO_RCVBUF, SO_SNDBUF): an integer in 1..2^31-1 (the kernel takes
 * a C int, and raises anything below its minimum to the minimum).
 */
export function bufferSizeArgument(value: unknown, what: string): number {
  return integerArgument(value, what, 1, 0x7fffffff)
}

// ---- Timeouts ----------------------------------------------------------------------------------

/** The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); longer ones fire at 1 ms. */
export const TIMER_MAX_MS = 0x7fffffff

/**
 * The timeout rule, the same for every timeout in the package (connect `timeout`, relay
 * `idleTimeout`, handoff `timeout`, `SocketStream#setTimeout`): a number of ms, not NaN and not
 * negative (else RangeError; not a number → TypeError). `Infinity`, and any delay longer than a Node
 * timer can hold (above 2^31-1 ms, ~24.8 days), mean no deadline: returned as null, so no timer is
 * armed and the binding is passed "none". A deadline that far away is never worth a chain of timers,
 * and no value can then make a timer fire early (Node fires an over-long timer after 1 ms). With
 * `positive`, 0 is refused too.
 */
export function timeoutArgument(value: unknown, what: string, { positive = false } = {}): number | null {
  if (typeof value !== 'number') throw invalidArgType(`${what} must be a number of milliseconds, not ${describe(value)}`)
  if (Number.isNaN(value) || value < 0 || (positive && value === 0)) {
    throw outOfRange(`${what} must be ${positive ? 'positive' : 'non-negative'} (ms; Infinity for none), not ${value}`)
  }
  return value > TIMER_MAX_MS ? null : value
}

/** Runs `fire` once `ms` passed (null: never). Unref'd: a deadline alone never holds the process. */
export function armTimer(ms: number | null, fire: () => void): NodeJS.Timeout | null {
  return ms === null ? null : setTimeout(fire, ms).unref()
}

/** A checked timeout as the binding takes it: whole ms (rounded up, never early), -1 for none. */
export function nativeTimeout(ms: number | null): number {
  return ms === null ? -1 : Math.ceil(ms)
}

// ---- Data --------------------------------------------------------------------------------------

/** Data to send: a Uint8Array as is (Buffers included), a string as UTF-8, anything else TypeError. */
export function bytesArgument(data: unknown, what: string): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  throw invalidArgType(`${what}: data must be a Uint8Array or a string, not ${describe(data)}`)
}

/**
 * Checks every chunk before anything is written. Returns the caller's own array when it holds only
 * Uint8Arrays (no copy), else a converted copy.
 */
export function byteChunksArgument(chunks: unknown, what: string): Uint8Array[] {
  if (chunks === null || typeof chunks !== 'object' || !(Symbol.iterator in chunks)) {
    throw invalidArgType(`${what}: chunks must be an iterable of Uint8Array or string, not ${describe(chunks)}`)
  }
  const list: unknown[] = Array.isArray(chunks) ? chunks : Array.from(chunks as Iterable<unknown>)
  let converted: Uint8Array[] | null = null
  for (let i = 0; i < list.length; i++) {
    const item = list[i]
    if (item instanceof Uint8Array) {
      if (converted !== null) converted.push(item)
      continue
    }
    const bytes = bytesArgument(item, what)
    converted ??= (list as Uint8Array[]).slice(0, i)
    converted.push(bytes)
  }
  return converted ?? (list as Uint8Array[])
}

// ---- Strings, paths and other kinds ------------------------------------------------------------

export function stringArgument(value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalidArgType(`${what} must be a string, not ${describe(value)}`)
  return value
}

export function booleanArgument(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(`${what} must be a boolean, not ${describe(value)}`)
  return value
}

export function functionArgument<F extends (...args: never[]) => unknown>(value: unknown, what: string): F {
  if (typeof value !== 'function') throw invalidArgType(`${what} must be a function, not ${describe(value)}`)
  return value as F
}

export function arrayArgument(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw invalidArgType(`${what} must be an array, not ${describe(value)}`)
  return value
}

export function objectArgument(value: unknown, what: string): object {
  if (value === null || typeof value !== 'object') throw invalidArgType(`${what} must be an object, not ${describe(value)}`)
  return value
}

/** An options argument: an object (else TypeError); undefined gives {} unless it is `required`. */
export function optionsArgument<T extends object>(value: T | undefined, what: string, { required = false } = {}): Partial<T> {
  if (value === undefined && !required) return {}
  return objectArgument(value, what) as Partial<T>
}

export function abortSignalArgument(value: unknown, what: string): AbortSignal {
  if (!(value instanceof AbortSignal)) throw invalidArgType(`${what} must be an AbortSignal, not ${describe(value)}`)
  return value
}

// ---- Factories and protocols -------------------------------------------------------------------

/** Whether `value` (an object, or a class's prototype) has a method called `name`. */
function hasMethod(value: unknown, name: string): boolean {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as Record<string, unknown>)[name] === 'function'
}

/** A function's own name if it is a non-empty string, else `fallback`. */
function functionName(fn: { name?: unknown }, fallback: string): string {
  return typeof fn.name === 'string' && fn.name !== '' ? fn.name : fallback
}

/** A class's or function's name for messages ("the class Echo", "a function"). */
function functionLabel(fn: { name?: unknown; prototype?: unknown }): string {
  const name = functionName(fn, '')
  const isClass = fn.prototype !== undefined && /^class\b/.test(Function.prototype.toString.call(fn))
  return isClass ? `the class${name && ` ${name}`}` : name ? `the function ${name}` : 'a function'
}

/**
 * A factory argument (`method`: the public call, for the message). Any object with a
 * `buildProtocol` method is a factory; anything else is a TypeError (ERR_INVALID_ARG_TYPE) that
 * says what was passed and, for the usual mistakes, what to pass: a Protocol class →
 * `ServerFactory.forProtocol(Echo)`; a factory class → `new MyFactory()`.
 */
export function factoryArgument(value: unknown, method: string): IProtocolFactory {
  if (typeof value === 'object' && value !== null && hasMethod(value, 'buildProtocol')) return value as IProtocolFactory
  const expected = `${method}: factory must have buildProtocol()`
  if (typeof value === 'function') {
    const fn = value as { name?: unknown; prototype?: unknown }
    const got = functionLabel(fn)
    if (hasMethod(fn.prototype, 'buildProtocol')) throw invalidArgType(`${expected}; got ${got}, not an instance of it — pass new ${functionName(fn, 'Factory')}()`)
    if (hasMethod(fn.prototype, 'makeConnection') || hasMethod(fn.prototype, 'dataReceived')) {
      throw invalidArgType(`${expected}; got ${got}, a protocol — pass ServerFactory.forProtocol(${functionName(fn, 'YourProtocol')})`)
    }
    throw invalidArgType(`${expected}; got ${got}`)
  }
  if (typeof value === 'object' && value !== null && (hasMethod(value, 'makeConnection') || hasMethod(value, 'dataReceived'))) {
    const name = className(value, 'YourProtocol')
    throw invalidArgType(`${expected}; got ${describe(value)}, a protocol — pass a factory that builds one per connection, e.g. ServerFactory.forProtocol(${name})`)
  }
  throw invalidArgType(`${expected}; got ${describe(value)}`)
}

/** What the reactor calls on a datagram protocol (besides the optional ones). */
const DATAGRAM_PROTOCOL_METHODS = ['makeConnection', 'doStop'] as const

function isDatagramProtocol(value: unknown): boolean {
  return DATAGRAM_PROTOCOL_METHODS.every((m) => hasMethod(value, m)) && (hasMethod(value, 'datagramReceived') || hasMethod(value, 'datagramsReceived'))
}

/**
 * A datagram protocol argument: an object with makeConnection, doStop and datagramReceived (or
 * datagramsReceived), as a DatagramProtocol has; anything else is a TypeError
 * (ERR_INVALID_ARG_TYPE) that says what was passed and what is missing.
 */
export function datagramProtocolArgument(value: unknown, method: string): IDatagramProtocol {
  if (typeof value === 'object' && value !== null && isDatagramProtocol(value)) return value as IDatagramProtocol
  const expected = `${method}: protocol must be a DatagramProtocol (with makeConnection, doStop and datagramReceived)`
  if (typeof value === 'function') {
    const fn = value as { name?: unknown; prototype?: unknown }
    const got = functionLabel(fn)
    if (isDatagramProtocol(fn.prototype)) throw invalidArgType(`${expected}; got ${got}, not an instance of it — pass new ${functionName(fn, 'YourProtocol')}()`)
    throw invalidArgType(`${expected}; got ${got}`)
  }
  if (typeof value === 'object' && value !== null) {
    const missing: string[] = DATAGRAM_PROTOCOL_METHODS.filter((m) => !hasMethod(value, m))
    if (!hasMethod(value, 'datagramReceived') && !hasMethod(value, 'datagramsReceived')) missing.push('datagramReceived')
    const stream = hasMethod(value, 'buildProtocol') ? ', a stream factory' : hasMethod(value, 'dataReceived') ? ', a stream protocol' : ''
    throw invalidArgType(`${expected}; got ${describe(value)}${stream}, which has no ${missing.join(', ')}`)
  }
  throw invalidArgType(`${expected}; got ${describe(value)}`)
}

/** A family argument: a number (else TypeError) among those `supported` (else UnsupportedAddressFamily). */
export function familyArgument<F extends number>(value: unknown, supported: readonly F[], what: string): asserts value is F {
  if (typeof value !== 'number') throw invalidArgType(`${what}: family must be a number, not ${describe(value)}`)
  if (!(supported as readonly number[]).includes(value)) throw UnsupportedAddressFamily.unsupported(what, value, supported)
}

/** sun_path's size on Linux: a path takes at most 107 bytes (and its terminating NUL). */
const SUN_PATH = 108

/**
 * A UNIX socket address: a non-empty string (else TypeError) without NUL bytes except a leading one,
 * which names an abstract socket; it must fit sun_path: 107 bytes for a path, 108 with the leading
 * NUL for an abstract name (else ENAMETOOLONG, as the kernel would say).
 */
export function unixPathArgument(value: unknown, what: string): string {
  if (typeof value !== 'string') throw invalidArgType(`${what} must be a string, not ${describe(value)}`)
  if (value === '') throw invalidArgValue(`${what} must not be empty`)
  const abstract = value.charCodeAt(0) === 0
  if (value.indexOf('\0', 1) !== -1) throw invalidArgValue(`${what} must not contain NUL bytes${abstract ? ' after the leading one' : ''}`)
  const bytes = Buffer.byteLength(value)
  const limit = abstract ? SUN_PATH : SUN_PATH - 1
  if (bytes > limit) {
    throw errnoError('ENAMETOOLONG', `${what} is too long: ${bytes} bytes, at most ${limit} for ${abstract ? 'an abstract name' : 'a path'}: ${targetLabel({ path: value })}`, { path: value })
  }
  return value
}

// ---- Names -------------------------------------------------------------------------------------

/**
 * One of a fixed set of names (a socket option's, ...): a string (else TypeError
 * ERR_INVALID_ARG_TYPE) among `known` (else TypeError ERR_INVALID_ARG_VALUE, whose message lists
 * them).
 */
export function nameArgument<N extends string>(value: unknown, what: string, known: readonly N[]): N {
  if (typeof value !== 'string') throw invalidArgType(`${what} must be a string, not ${describe(value)}`)
  if (!(known as readonly string[]).includes(value)) {
    throw invalidArgValue(`${what} must be one of ${known.join(', ')}; not ${shown(value)}`)
  }
  return value as N
}

/**
 * A short name the kernel takes as a C string (an interface, a congestion control algorithm): a
 * string (else TypeError ERR_INVALID_ARG_TYPE) of ASCII without NUL, not empty unless `mayBeEmpty`
 * (else TypeError ERR_INVALID_ARG_VALUE), of at most `maxLength` bytes (else RangeError: the
 * kernel's buffer holds that many and the NUL).
 */
export function asciiNameArgument(value: unknown, what: string, maxLength: number, { mayBeEmpty = false } = {}): string {
  if (typeof value !== 'string') throw invalidArgType(`${what} must be a string, not ${describe(value)}`)
  if (value === '' && !mayBeEmpty) throw invalidArgValue(`${what} must not be empty`)
  // eslint-disable-next-line no-control-regex
  if (!/^[\x01-\x7f]*$/.test(value)) throw invalidArgValue(`${what} must be ASCII without NUL bytes, not ${shown(value)}`)
  if (value.length > maxLength) throw outOfRange(`${what} must be at most ${maxLength} bytes, not ${value.length} (${shown(value)})`)
  return value
}
