// What ports, datagram ports and transports share: an id in the core, a place in the reactor's
// registry while they are live, and a ref that keeps Node's event loop alive (like Node's handles).
import type { Address } from './address'
import type { IProtocol } from './interfaces'
import type { NativeReactor } from './native'

/** The reactor side a handle talks to. */
export interface HandleHost {
  readonly native: NativeReactor
  /** Reports an exception thrown by user code (the `onError` option, stderr by default). */
  report(err: unknown): void
  /** Counts a ref'd live handle (the core holds Node's loop while the count is above 0). */
  hold(): void
  release(): void
  /** Removes a handle that is no longer live from the registry, so its later events are ignored. */
  forget(handle: Handle): void
  /** Closes, orderly and at once, an accepted connection that no protocol will own. */
  closeUnwanted(id: number): void
  /** Registers and starts an accepted connection (called by a listening port). */
  acceptConnection(id: number, family: number, protocol: IProtocol, peer: Address): void
  /** Accept records for `portId` still ahead in the batch being dispatched. */
  acceptsAhead(portId: number): number
  /** Stopped listening ports whose accepted connections are still to be delivered. */
  readonly drainingPorts: Map<number, import('./port').ListeningPort>
  /** Calls `port.flushReceived()` once the batch being dispatched is done. */
  flushAfterBatch(port: { flushReceived(): void }): void
}

export abstract class Handle {
  private refd = true
  private live = true

  protected constructor(
    protected readonly host: HandleHost,
    /** The core's id of this handle. */
    readonly id: number,
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

  /** The handle is closed in the core: forget it and stop holding the loop. Idempotent. */
  protected detach(): void {
    if (!this.live) return
    this.live = false
    this.host.forget(this)
    if (this.refd) this.host.release()
  }
}

/** A promise that settles on a later turn of Node's event loop (never within the current macrotask). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
