// `handoff`: replace a running process without closing its listening sockets. The old process
// offers its listeners on a UNIX socket (mode 0600; peers of another uid are refused by
// SO_PEERCRED); the new one takes them, serves them, and says ready; then the old one stops its
// ports and lets its connections finish. The sockets never close, so no connection attempt is
// refused. The protocol is the core's (crates/core/src/handoff.rs); every wait runs on a small
// native thread, never on the JS thread (crates/node/src/handoff.rs).
import { errnoError, fromNativeError, invalidArgType, outOfRange, type ErrnoError } from './errors'
import { binding, type NativeHandoffControl, type NativeHandoffOutcome } from './native'

/** A descriptor to hand over, with a name the successor finds it by. */
export interface HandoffListener {
  name: string
  fd: number
}

export interface OfferOptions {
  /** Uids besides our own whose processes may take the listeners. */
  allowUids?: number[]
  /** ms one taker may take from its connect to its `ready()` (default 10000) before the offer
   *  drops it. Takers are served at once (up to 16), so a silent one delays nobody. */
  takerTimeout?: number
}

export interface TakeOptions {
  /** ms to wait for the offering process's answer, and then for its acknowledgement of
   *  `ready()` (default 30000; Infinity waits for ever). */
  timeout?: number
  /** Uids besides our own and root's whose offers we accept (the offering process's uid is
   *  checked with SO_PEERCRED; another one is refused with code 'EPERM'). */
  trustUids?: number[]
}

/** A listener as received: the fd is close-on-exec and belongs to the caller. */
export interface TakenListener {
  name: string
  fd: number
  /** AddressFamily number; 0 for a descriptor that is not a socket. */
  family: number
  /** SocketType number; 0 for a descriptor that is not a socket. */
  type: number
  listening: boolean
}

export interface Taken {
  listeners: TakenListener[]
  /** Call once the listeners are served here: the old process is told, withdraws its offer
   *  (the path is gone when this resolves) and starts draining. Every call returns the same
   *  promise. */
  ready(): Promise<void>
}

const DEFAULT_TIMEOUT = 30000

/** Offers not yet closed: their paths are removed when the process exits, even by
 *  process.exit() (which does not tear the JS environment down). */
const openOffers = new Set<Offer>()
let exitHookInstalled = false

function closeAtExit(offer: Offer): void {
  openOffers.add(offer)
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const open of openOffers) open.close()
  })
}

/** An open offer (the old process's side). */
export class Offer {
  /** Resolves once a successor took the listeners and called ready(); rejects with code
   *  'ECANCELED' after close(), or with the error that ended the offer. */
  readonly taken: Promise<void>
  readonly path: string
  #native: { close(): void } | null = null

  /** @internal Made by handoff.offer(). */
  constructor(path: string, listeners: HandoffListener[], allowUids: number[], takerTimeout = -1) {
    this.path = path
    let settle!: (outcome: NativeHandoffOutcome) => void
    this.taken = new Promise<void>((resolve, reject) => {
      settle = (outcome) => {
        // The offer's thread is done and has closed its sockets; let go of the native handle too.
        this.close()
        if (outcome.code) reject(outcomeError(outcome))
        else resolve()
      }
    })
    // A closed offer rejects `taken`; that alone must not be an unhandled rejection.
    this.taken.catch(() => {})
    const names = listeners.map((l) => l.name)
    const fds = listeners.map((l) => l.fd)
    this.#native = native(() => binding.handoff.offer(path, names, fds, allowUids, takerTimeout, settle))
    closeAtExit(this)
  }

  /** Withdraws the offer: removes the path now and ends the wait (`taken` rejects with
   *  'ECANCELED' unless it resolved already). The listeners are untouched. Idempotent. */
  close(): void {
    this.#native?.close()
    this.#native = null
    openOffers.delete(this)
  }
}

export const handoff = Object.freeze({
  /**
   * Offers `listeners` at `path` until a successor takes them. Synchronous errors: TypeError for
   * bad arguments, EBADF for a listener that is not open, EADDRINUSE when a live offer holds the
   * path, EINVAL for none or more than 253 listeners, ENOENT / EACCES for the path's directory.
   */
  offer(path: string, listeners: HandoffListener[], options: OfferOptions = {}): Offer {
    checkPath(path, 'offer')
    if (!Array.isArray(listeners)) throw invalidArgType('offer: listeners must be an array of { name, fd }')
    for (const l of listeners) {
      if (l === null || typeof l !== 'object') throw invalidArgType('offer: each listener must be an object { name, fd }')
      if (typeof l.name !== 'string') throw invalidArgType('offer: a listener name must be a string')
      if (typeof l.fd !== 'number' || !Number.isInteger(l.fd) || l.fd < 0) {
        throw invalidArgType(`offer: a listener fd must be a non-negative integer, not ${String(l.fd)}`)
      }
    }
    if (options === null || typeof options !== 'object') throw invalidArgType('offer: options must be an object')
    const { allowUids = [], takerTimeout } = options
    checkUids(allowUids, 'offer', 'allowUids')
    if (takerTimeout !== undefined) {
      if (typeof takerTimeout !== 'number' || Number.isNaN(takerTimeout)) throw invalidArgType('offer: takerTimeout must be a number')
      if (!(takerTimeout > 0)) throw outOfRange(`offer: takerTimeout must be > 0, not ${takerTimeout}`)
    }
    return new Offer(path, listeners.map((l) => ({ name: l.name, fd: l.fd })), [...allowUids], takerTimeout)
  },

  /**
   * Takes the listeners offered at `path`. Rejects with code ENOENT or ECONNREFUSED (no offer),
   * EPERM (the offer was made by a uid that is not ours, root's, or in `trustUids`: nothing is
   * received), ETIMEDOUT (no answer in time), EACCES (the offering process refused our uid),
   * ECONNRESET (it went away).
   */
  take(path: string, options: TakeOptions = {}): Promise<Taken> {
    checkPath(path, 'take')
    if (options === null || typeof options !== 'object') throw invalidArgType('take: options must be an object')
    const { timeout = DEFAULT_TIMEOUT, trustUids = [] } = options
    checkUids(trustUids, 'take', 'trustUids')
    if (typeof timeout !== 'number' || Number.isNaN(timeout)) throw invalidArgType('take: timeout must be a number')
    if (timeout < 0) throw outOfRange(`take: timeout must be >= 0, not ${timeout}`)
    const timeoutMs = timeout === Infinity ? -1 : timeout
    return new Promise<Taken>((resolve, reject) => {
      native(() =>
        binding.handoff.take(path, timeoutMs, [...trustUids], (outcome) => {
          if (outcome.code) return reject(outcomeError(outcome))
          resolve(taken(outcome, timeoutMs))
        }),
      )
    })
  },
})

function taken(outcome: NativeHandoffOutcome, timeoutMs: number): Taken {
  const control = outcome.control as NativeHandoffControl
  let confirmed: Promise<void> | null = null
  return {
    listeners: (outcome.listeners ?? []).map((l) => ({ ...l })),
    ready() {
      confirmed ??= new Promise<void>((resolve, reject) => {
        binding.handoff.ready(control, timeoutMs, (done) => (done.code ? reject(outcomeError(done)) : resolve()))
      })
      return confirmed
    },
  }
}

function outcomeError(outcome: NativeHandoffOutcome): ErrnoError {
  const code = outcome.code ?? 'EUNKNOWN'
  return errnoError(code, outcome.message ?? code)
}

function checkUids(uids: unknown, method: string, option: string): asserts uids is number[] {
  if (!Array.isArray(uids)) throw invalidArgType(`${method}: ${option} must be an array of uids`)
  for (const uid of uids) {
    if (typeof uid !== 'number' || !Number.isInteger(uid)) throw invalidArgType(`${method}: ${String(uid)} is not a uid`)
    if (uid < 0 || uid > 0xffffffff) throw outOfRange(`${method}: ${uid} is not a uid`)
  }
}

function checkPath(path: unknown, method: string): asserts path is string {
  if (typeof path !== 'string' || path === '') throw invalidArgType(`${method}: path must be a non-empty string`)
}

function native<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw fromNativeError(err)
  }
}
