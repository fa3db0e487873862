// Input that reached a stream connection while its protocol could not take it (reading paused, or
// older input not yet delivered): bytes and received descriptors in arrival order, then the peer's
// EOF, which must not overtake them. Delivered in that order once reading resumes, on a later turn.
import { closeDescriptors } from './descriptors'

/** Where held input goes, and whether it may go now. */
export interface InputSink {
  /** Held input may be delivered now (reading neither paused nor stopped, the connection open). */
  accepting(): boolean
  data(chunk: Buffer): void
  fds(fds: number[]): void
  eof(): void
}

export class HeldInput {
  /** Bytes (views of batch buffers, which the core never reuses) and descriptor lists, in order. */
  private items: Array<Buffer | number[]> | null = null
  /** The first item not yet delivered. */
  private index = 0
  private eof = false
  private flushScheduled = false

  constructor(private readonly sink: InputSink) {}

  /** Bytes or descriptors are held: newer input must queue behind them. */
  get holdsInput(): boolean {
    return this.items !== null
  }

  hold(item: Buffer | number[]): void {
    if (this.items === null) this.items = [item]
    else this.items.push(item)
  }

  holdEof(): void {
    this.eof = true
  }

  /** Delivers what is held on a later turn (never inside the call that resumed reading). */
  deliverLater(): void {
    if ((this.items === null && !this.eof) || this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(HeldInput.flush, this)
  }

  /** Delivers in order while the sink accepts; what is left waits for the next resume. */
  private static flush(held: HeldInput): void {
    held.flushScheduled = false
    const sink = held.sink
    while (held.items !== null && sink.accepting()) {
      const item = held.items[held.index++]
      if (held.index === held.items.length) {
        held.items = null
        held.index = 0
      }
      if (Buffer.isBuffer(item)) sink.data(item)
      else sink.fds(item)
    }
    if (held.eof && held.items === null && sink.accepting()) {
      held.eof = false
      sink.eof()
    }
  }

  /**
   * For a relay: the bytes held, to go out first. Held descriptors cannot be relayed (they are
   * closed); a held EOF is dropped, as the core knows it read the peer's FIN and passes it on.
   */
  takeBytes(): Buffer[] {
    const bytes = this.items === null ? [] : (this.items.slice(this.index).filter((item) => Buffer.isBuffer(item)) as Buffer[])
    this.drop()
    return bytes
  }

  /** Forgets everything held; held descriptors are closed (nobody will own them). */
  drop(): void {
    if (this.items !== null) {
      for (let i = this.index; i < this.items.length; i++) {
        const item = this.items[i]
        if (!Buffer.isBuffer(item)) closeDescriptors(item)
      }
    }
    this.items = null
    this.index = 0
    this.eof = false
  }
}
