// Protocols and factories that record what the reactor does to them, for assertions.
//
// Re-entrancy is checked with a global depth counter: every recorder callback, and every call a
// test makes "as the protocol" (through `inCall`), runs with depth > 0; connectionLost and
// stopProtocol record the depth they were called at, which must be 0 (never from inside a call
// into the reactor or from inside another callback).
import * as crypto from 'node:crypto'
import { Protocol, ServerFactory, DatagramProtocol } from 'reactor-socket'
import { waitUntil, quietPeriod } from './waits.js'

let depth = 0
export const callDepth = () => depth

export function inCall<T>(fn: () => T): T {
  depth++
  try {
    return fn()
  } finally {
    depth--
  }
}

export const className = (x: any) => x?.constructor?.name ?? String(x)

/** Records everything that happens to a stream connection. Hooks: the `on*` fields. */
export class Rec extends Protocol {
  /** 'made', 'data', 'lost' in the order the callbacks came. */
  log: string[] = []
  chunks: Buffer[] = []
  /** Set to false for large transfers: `bytes` and `hash` still see every byte. */
  keepChunks = true
  bytes = 0
  hash = crypto.createHash('sha256')
  madeCount = 0
  lostReasons: any[] = []
  lostDepths: number[] = []
  dataAfterLost = 0
  echo = false
  onMade?: (p: Rec) => void
  onData?: (p: Rec, d: Buffer) => void
  onLost?: (p: Rec, reason: any) => void

  get t(): any {
    return (this as any).transport
  }
  makeConnection(transport: any) {
    inCall(() => super.makeConnection(transport))
  }
  connectionMade() {
    this.madeCount++
    this.log.push('made')
    this.onMade?.(this)
  }
  dataReceived(d: Buffer) {
    this.log.push('data')
    if (this.lostReasons.length > 0) this.dataAfterLost++
    inCall(() => {
      this.bytes += d.length
      this.hash.update(d)
      if (this.keepChunks) this.chunks.push(d)
      if (this.echo) this.t.write(d)
      this.onData?.(this, d)
    })
  }
  connectionLost(reason: any) {
    this.log.push('lost')
    this.lostDepths.push(depth)
    this.lostReasons.push(reason)
    inCall(() => this.onLost?.(this, reason))
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks)
  }
  get text(): string {
    return this.data.toString()
  }
  get reason(): any {
    return this.lostReasons[0]
  }
  waitBytes(n: number, ms = 10000) {
    return waitUntil(() => this.bytes >= n, () => `${n} bytes at the protocol (have ${this.bytes})`, ms)
  }
  waitText(s: string, ms = 10000) {
    return waitUntil(() => this.text.includes(s), `protocol text ${JSON.stringify(s)}`, ms)
  }
  async waitLost(ms = 10000): Promise<any> {
    await waitUntil(() => this.lostReasons.length > 0, 'connectionLost', ms)
    return this.lostReasons[0]
  }
}

export class EchoRec extends Rec {
  echo = true
}

/** A ServerFactory that records what it built and its start/stop calls. */
export class RecFactory extends ServerFactory {
  built: any[] = []
  addrs: any[] = []
  starts = 0
  stops = 0
  doStarts = 0
  doStops = 0
  decline = false
  constructor(proto: any = EchoRec) {
    super()
    ;(this as any).protocol = proto
  }
  buildProtocol(addr: any): any {
    this.addrs.push(addr)
    if (this.decline) return null
    const p = super.buildProtocol(addr)
    this.built.push(p)
    return p
  }
  doStart() {
    this.doStarts++
    return super.doStart()
  }
  doStop() {
    this.doStops++
    return super.doStop()
  }
  startFactory() {
    this.starts++
  }
  stopFactory() {
    this.stops++
  }
  waitBuilt(n = 1, ms = 10000) {
    return waitUntil(() => this.built.length >= n, `${n} protocols built`, ms)
  }
}

/** A plain factory object (any object with buildProtocol is one, no ServerFactory) building Recs. */
export function plainRecFactory(setup: (p: Rec) => void = () => {}) {
  const built: Rec[] = []
  return {
    built,
    buildProtocol(_addr: any) {
      const p = new Rec()
      setup(p)
      built.push(p)
      return p
    },
  }
}

/** After a quiet period, a protocol must have had exactly one connectionLost, called at depth 0. */
export async function exactlyOnce(t: any, p: Rec, settle = 100) {
  await quietPeriod(settle, 'a second connectionLost or a late dataReceived')
  t.is(p.lostReasons.length, 1, `connectionLost exactly once (${p.lostReasons.map(className).join(', ')})`)
  t.deepEqual(p.lostDepths, [0], 'connectionLost never re-entrant')
  t.is(p.dataAfterLost, 0, 'no dataReceived after connectionLost')
}

/** Records datagrams and the protocol's start/stop. Hooks: the `on*` fields. */
export class DgramRec extends DatagramProtocol {
  got: { data: Buffer; addr: any }[] = []
  /** 'start', 'dgram', 'refused', 'stop' in the order the callbacks came. */
  log: string[] = []
  starts = 0
  stops = 0
  stopDepths: number[] = []
  refused = 0
  transportAtStart: any
  onStart?: (p: DgramRec) => void
  onDatagram?: (p: DgramRec, d: Buffer, addr: any) => void

  get t(): any {
    return (this as any).transport
  }
  makeConnection(transport: any) {
    inCall(() => super.makeConnection(transport))
  }
  startProtocol() {
    this.starts++
    this.log.push('start')
    this.transportAtStart = (this as any).transport
    this.onStart?.(this)
  }
  stopProtocol() {
    this.stops++
    this.log.push('stop')
    this.stopDepths.push(depth)
  }
  datagramReceived(data: Buffer, addr: any) {
    this.log.push('dgram')
    inCall(() => {
      this.got.push({ data, addr })
      this.onDatagram?.(this, data, addr)
    })
  }
  connectionRefused() {
    this.refused++
    this.log.push('refused')
  }
  waitCount(n: number, ms = 10000) {
    return waitUntil(() => this.got.length >= n, () => `${n} datagrams (have ${this.got.length})`, ms)
  }
}
