// `handoff`: replace a running process without closing its listening sockets. The old process
// offers its listeners on a UNIX socket (mode 0600; peers of another uid are refused by
// SO_PEERCRED); the new one takes them, serves them, and says ready; then the old one stops its
// ports and lets its connections finish. The sockets never close, so no connection attempt is
// refused. The protocol is the core's (crates/core/src/handoff.rs); every wait runs on a small
// native thread, never on the JS thread (crates/node/src/handoff.rs).
import { atTarget, callNativeAt, errnoError, type ErrnoError } from './errors'
import { binding, type NativeHandoffControl, type NativeHandoffOutcome } from './native'
import { arrayArgument, checkFd, integerArgument, nativeTimeout, objectArgument, optionsArgument, stringArgument, timeoutArgument, TIMER_MAX_MS, unixPathArgument } from './validate'

/** A descriptor to hand over, with a name the successor finds it by. */
export interface HandoffListener {
  /** The name the successor finds it by (`TakenListener.name`). */
  name: string
  /** An open descriptor of this process (the offer sends a duplicate; this one stays ours). */
  fd: number
}

/** `handoff.offer`'s options. */
export interface OfferOptions {
  /** Uids besides our own whose processes may take the listeners. */
  allowUids?: number[] | undefined
  /** ms one taker may take from its connect to its `ready()` (default 10000) before the offer
   *  drops it. Takers are served at once (up to 16), so a silent one delays nobody. */
  takerTimeout?: number | undefined
}

/** `handoff.take`'s options. */
export interface TakeOptions {
  /** ms to wait for the offering process's answer, and then for its acknowledgement of
   *  `ready()` (default 30000; Infinity, or more than 2^31-1, waits for ever). */
  timeout?: number | undefined
  /** Uids besides our own and root's whose offers we accept (the offering process's uid is
   *  checked with SO_PEERCRED; another one is refused with code 'EPERM'). */
  trustUids?: number[] | undefined
}

/** A listener as received: the fd is close-on-exec and belongs to the caller. */
export interface TakenListener {
  /** The name it was offered under. */
  name: string
  /** The received descriptor (close-on-exec), ours to adopt or close. */
  fd: number
  /** AddressFamily number; 0 for a descriptor that is not a socket. */
  family: number
  /** SocketType number; 0 for a descriptor that is not a socket. */
  type: number
  /** Whether the socket is listening (SO_ACCEPTCONN). */
  listening: boolean
}

/** What `handoff.take` resolves with. */
export interface Taken {
  /** The offered listeners, each with its name. */
  listeners: TakenListener[]
  /** Call once the listeners are served here: the old process is told, withdraws its offer
   *  (the path is gone when this resolves) and starts draining. Every call returns the same
   *  promise. */
  ready(): Promise<void>
}

const DEFAULT_TIMEOUT = 30000
const MAX_UID = 0xffffffff

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
  /** The UNIX socket path the offer listens on. */
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
        if (outcome.code) reject(outcomeError(outcome, path))
        else resolve()
      }
    })
    // A closed offer rejects `taken`; that alone must not be an unhandled rejection.
    this.taken.catch(() => {})
    const names = listeners.map((l) => l.name)
    const fds = listeners.map((l) => l.fd)
    this.#native = callNativeAt({ path }, () => binding.handoff.offer(path, names, fds, allowUids, takerTimeout, settle))
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

/**
 * A zero-downtime handoff of listening sockets from an old process to its successor over a UNIX
 * socket (SCM_RIGHTS): `offer` in the old process, `take` in the new one.
 */
export const handoff = Object.freeze({
  /**
   * Offers `listeners` at `path` until a successor takes them. Synchronous errors: TypeError for
   * bad arguments, EBADF for a listener that is not open, EADDRINUSE when a live offer holds the
   * path, EINVAL for none or more than 253 listeners, ENOENT / EACCES for the path's directory.
   */
  offer(path: string, listeners: HandoffListener[], options: OfferOptions = {}): Offer {
    unixPathArgument(path, 'offer: path')
    const offered = arrayArgument(listeners, 'offer: listeners').map((l) => {
      const { name, fd } = objectArgument(l, 'offer: each listener { name, fd }') as Partial<HandoffListener>
      return { name: stringArgument(name, 'offer: a listener name'), fd: checkFd(fd, 'offer: a listener fd') }
    })
    const { allowUids = [], takerTimeout } = optionsArgument(options, 'offer: options')
    const uids = uidsArgument(allowUids, 'offer: allowUids')
    // A taker's deadline: Infinity (no deadline) is refused here, a silent taker must not hold the offer.
    const takerMs = takerTimeout === undefined ? undefined : integerArgument(takerTimeout, 'offer: takerTimeout', 1, TIMER_MAX_MS)
    return new Offer(path, offered, uids, takerMs)
  },

  /**
   * Takes the listeners offered at `path`. Rejects with code ENOENT or ECONNREFUSED (no offer),
   * EPERM (the offer was made by a uid that is not ours, root's, or in `trustUids`: nothing is
   * received), ETIMEDOUT (no answer in time), EACCES (the offering process refused our uid),
   * ECONNRESET (it went away).
   */
  take(path: string, options: TakeOptions = {}): Promise<Taken> {
    unixPathArgument(path, 'take: path')
    const { timeout = DEFAULT_TIMEOUT, trustUids = [] } = optionsArgument(options, 'take: options')
    const timeoutMs = nativeTimeout(timeoutArgument(timeout, 'take: timeout'))
    const trusted = uidsArgument(trustUids, 'take: trustUids')
    return new Promise<Taken>((resolve, reject) => {
      callNativeAt({ path }, () =>
        binding.handoff.take(path, timeoutMs, trusted, (outcome) => {
          if (outcome.code) return reject(outcomeError(outcome, path))
          resolve(taken(outcome, path, timeoutMs))
        }),
      )
    })
  },
})

function taken(outcome: NativeHandoffOutcome, path: string, timeoutMs: number): Taken {
  const control = outcome.control as NativeHandoffControl
  let confirmed: Promise<void> | null = null
  return {
    listeners: (outcome.listeners ?? []).map((l) => ({ ...l })),
    ready() {
      confirmed ??= new Promise<void>((resolve, reject) => {
        binding.handoff.ready(control, timeoutMs, (done) => (done.code ? reject(outcomeError(done, path)) : resolve()))
      })
      return confirmed
    },
  }
}

/** A failed step's error: as the binding's syscall errors, it says the offer's path. */
function outcomeError(outcome: NativeHandoffOutcome, path: string): ErrnoError {
  const code = outcome.code ?? 'EUNKNOWN'
  return atTarget(errnoError(code, outcome.message ?? code, { syscall: outcome.syscall ?? undefined }), { path })
}

/** uids: an array of integers 0..2^32-1. */
function uidsArgument(uids: unknown, what: string): number[] {
  return arrayArgument(uids, what).map((uid) => integerArgument(uid, `${what}: a uid`, 0, MAX_UID))
}
