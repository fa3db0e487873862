// A listening stream port: accepts connections and builds a protocol for each with its factory.
import type { Address } from './address'
import { establish } from './establish'
import { Handle, nextTurn } from './handle'
import type { PortEntry, ReactorHost } from './host'
import type { IProtocolFactory } from './interfaces'

export class ListeningPort extends Handle implements PortEntry {
  private stopped: Promise<void> | null = null
  /** After the stop: accepted connections still to be delivered. */
  private toDeliver = 0
  /** @internal Resolves the wait for those connections (also on reactor close). */
  drained: () => void = () => {}
  /** Set when the adopt call is undone: `doStop` must not follow. */
  private abandoned = false

  /** @internal Made by the reactor. */
  constructor(
    host: ReactorHost,
    id: number,
    /** The socket's family; accepted connections have the same. */
    readonly family: number,
    readonly factory: IProtocolFactory,
    /** Decoded once at adoption, so it still answers after the stop. */
    private readonly address: Address,
  ) {
    super(host, id, 'port')
    host.register('port', id, this)
  }

  getHost(): Address {
    return this.address
  }

  /**
   * Closes the reactor's duplicate now (no shutdown: a caller's fd still listens), then on a later
   * turn runs `factory.doStop()` and resolves. Every call resolves, each on a later turn.
   */
  stopListening(): Promise<void> {
    if (this.stopped !== null) return this.stopped.then(nextTurn)
    let drained: Promise<void> = Promise.resolve()
    if (this.isLive) {
      // Connections the core accepted before the stop still reach the factory ("connections
      // already accepted stay open"); doStop waits for them.
      this.toDeliver = this.host.native.closePort(this.id) + this.host.acceptsAhead(this.id)
      this.detach()
      if (this.toDeliver > 0) {
        this.host.register('draining', this.id, this)
        drained = new Promise((resolve) => (this.drained = resolve))
      }
    }
    this.stopped = Promise.all([nextTurn(), drained]).then(() => this.runDoStop())
    return this.stopped
  }

  /** @internal EV_ACCEPT: `id` is the new connection; `peer` decodes its peer's address. */
  onAccept(id: number, peer: () => Address): void {
    if (!this.isLive && --this.toDeliver <= 0) {
      this.host.forget('draining', this.id, this)
      this.drained()
    }
    let address: Address
    try {
      address = peer()
    } catch (err) {
      this.host.report(err) // reported; that connection is closed, the port keeps accepting
      this.host.closeUnwanted(id)
      return
    }
    establish(this.host, id, this.family, this.factory, address, 'accepted')
  }

  /**
   * @internal Undoes the adoption when `doStart` threw inside the adopt call: closes the duplicate,
   * and no `doStop` follows.
   */
  abandon(): void {
    this.abandoned = true
    if (this.isLive) {
      this.host.native.closePort(this.id)
      this.detach()
    }
  }

  private runDoStop(): void {
    if (this.abandoned || typeof this.factory.doStop !== 'function') return
    try {
      this.factory.doStop()
    } catch (err) {
      this.host.report(err)
    }
  }
}
