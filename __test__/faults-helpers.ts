// Helpers shared by the faults-*.spec.ts files (not a test file itself). Only the public API is used.
import * as crypto from 'node:crypto'
import { Protocol, DatagramProtocol } from 'reactor-socket'
import { fdList, waitUntil, pause } from './helpers.js'

// ---------------------------------------------------------------------------------------------
// Re-entrancy: a global depth counter. Every probe callback, and every call a test makes "as the
// protocol" (through `inCall`), runs with depth > 0; connectionLost / stopProtocol record the depth
// they were called at, which must be 0 (never from inside a call into the reactor or a callback).

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

/** A stream protocol that records everything and checks re-entrancy. Hooks: `on*` fields. */
export class Probe extends Protocol {
  made = 0
  chunks: Buffer[] = []
  bytes = 0
  lost: any[] = []
  lostDepths: number[] = []
  dataAfterLost = 0
  hash = crypto.createHash('sha256')
  keepChunks = true
  onMade?: (p: Probe) => void
  onData?: (p: Probe, d: Buffer) => void
  onLost?: (p: Probe, reason: any) => void

  get t(): any {
    return (this as any).transport
  }
  makeConnection(transport: any) {
    inCall(() => super.makeConnection(transport))
  }
  connectionMade() {
    this.made++
    this.onMade?.(this)
  }
  dataReceived(d: Buffer) {
    if (this.lost.length > 0) this.dataAfterLost++
    inCall(() => {
      this.bytes += d.length
      this.hash.update(d)
      if (this.keepChunks) this.chunks.push(d)
      this.onData?.(this, d)
    })
  }
  connectionLost(reason: any) {
    this.lostDepths.push(depth)
    this.lost.push(reason)
    inCall(() => this.onLost?.(this, reason))
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks)
  }
  get reason(): any {
    return this.lost[0]
  }
  async waitLost(ms = 5000): Promise<any> {
    await waitUntil(() => this.lost.length > 0, 'connectionLost', ms)
    return this.lost[0]
  }
  waitBytes(n: number, ms = 5000) {
    return waitUntil(() => this.bytes >= n, `${n} bytes at the protocol (have ${this.bytes})`, ms)
  }
}

/** A datagram protocol that records and checks re-entrancy of stopProtocol. */
export class DProbe extends DatagramProtocol {
  got: { data: Buffer; addr: any }[] = []
  starts = 0
  stops = 0
  stopDepths: number[] = []
  onDatagram?: (p: DProbe, d: Buffer, addr: any) => void
  onStart?: (p: DProbe) => void
  get t(): any {
    return (this as any).transport
  }
  makeConnection(transport: any) {
    inCall(() => super.makeConnection(transport))
  }
  startProtocol() {
    this.starts++
    this.onStart?.(this)
  }
  stopProtocol() {
    this.stopDepths.push(depth)
    this.stops++
  }
  datagramReceived(data: Buffer, addr: any) {
    inCall(() => {
      this.got.push({ data, addr })
      this.onDatagram?.(this, data, addr)
    })
  }
}

/** A factory object (any object with buildProtocol is one) that builds probes. */
export function probeFactory(setup: (p: Probe) => void = () => {}) {
  const built: Probe[] = []
  return {
    built,
    buildProtocol(_addr: any) {
      const p = new Probe()
      setup(p)
      built.push(p)
      return p
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Descriptors

/** Entries of the fd table (sockets, pipes, anon inodes, /dev/null) that were not in `before`. */
export const addedFds = (before: string[]) => fdList().filter((x) => !before.includes(x))

/** Waits (bounded) until no fd beyond `before` is open; returns what is still extra. */
export async function settleFds(before: string[], ms = 2000): Promise<string[]> {
  await waitUntil(() => addedFds(before).length === 0, 'the fd table to settle', ms).catch(() => {})
  return addedFds(before)
}

/** After a pause, a protocol must have exactly one connectionLost, called at depth 0. */
export async function exactlyOnce(t: any, p: Probe, settle = 100) {
  await pause(settle)
  t.is(p.lost.length, 1, `connectionLost exactly once (${p.lost.map((r) => r?.constructor?.name).join(', ')})`)
  t.deepEqual(p.lostDepths, [0], 'connectionLost never re-entrant')
  t.is(p.dataAfterLost, 0, 'no dataReceived after connectionLost')
}

export const className = (x: any) => x?.constructor?.name ?? String(x)

// ---------------------------------------------------------------------------------------------
// Memory

export const rss = () => process.memoryUsage.rss()
export const MiB = 1024 * 1024

/** Samples RSS every `ms` until stopped; keeps the maximum. */
export function rssSampler(ms = 25) {
  let max = rss()
  const timer = setInterval(() => {
    const v = rss()
    if (v > max) max = v
  }, ms)
  return {
    sample() {
      const v = rss()
      if (v > max) max = v
    },
    get max() {
      return max
    },
    stop() {
      clearInterval(timer)
      return max
    },
  }
}

/** Busy-waits (a deliberately slow callback). */
export function spin(us: number) {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000))
  while (process.hrtime.bigint() < end) {}
}
