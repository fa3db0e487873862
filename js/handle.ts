// What ports, datagram ports and transports share: an id in the core, a place in the reactor's
// registry while they are live, and a ref that keeps Node's event loop alive (like Node's handles).
import { callNative, errnoError } from './errors'
import type { EntryKind, ReactorHost } from './host'

export abstract class Handle {
  private refd = true
  private live = true

  /** The subclass registers itself under `kind` once constructed. */
  protected constructor(
    protected readonly host: ReactorHost,
    /** The core's id of this handle. */
    readonly id: number,
    private readonly kind: EntryKind,
  ) {
    host.hold()
  }

  /** Keeps Node's event loop alive while this stays open (the default). */
  ref(): this {
    if (this.live && !this.refd) {
      this.refd = true
      this.host.hold()
    }
    return this
  }

  /** Lets the process exit while this stays open. */
  unref(): this {
    if (this.live && this.refd) {
      this.refd = false
      this.host.release()
    }
    return this
  }

  protected get isLive(): boolean {
    return this.live
  }

  /**
   * A new close-on-exec descriptor of this handle's socket, for the caller to own and close
   * (`port.duplicateFd()`). `open`: whether the handle still serves its socket (a port that was
   * stopped does not, even while the core finishes with it). A closed one is an Error with code
   * 'EBADF', the code every call on a closed port has; no descriptor left is 'EMFILE'.
   */
  protected duplicateSocket(what: string, open = this.live): number {
    if (!open || !this.live) throw errnoError('EBADF', `${what}: the port is closed`)
    return callNative(() => this.host.native.duplicateFd(this.id))
  }

  /** The handle is closed in the core: forget it and stop holding the loop. Idempotent. */
  protected detach(): void {
    if (!this.live) return
    this.live = false
    this.host.forget(this.kind, this.id, this)
    if (this.refd) this.host.release()
  }
}

/** A promise that settles on a later turn of Node's event loop (never within the current macrotask). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
