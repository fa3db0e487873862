// docs/adopting.md "adoptStreamConnection", the transport as a consumer: streaming and pull producers on a stream
// transport, the 65536-byte line, drain, second registerProducer, stopProducing on loss and after
// loseConnection. Both modes.
import test from 'ava'
import { Reactor, ConnectionDone } from 'reactor-socket'
import {
  MODES,
  Rec,
  fileTeardown,
  within,
  waitUntil,
  type PairKind,
  adoptedConnection,
  quietPeriod,
} from '../helpers.js'

const LINE = 65536
const { reactors, cleanups } = fileTeardown()

class Producer {
  log: string[] = []
  paused = 0
  resumed = 0
  stopped = 0
  bufferAtResume: number[] = []
  constructor(public transport?: any) {}
  pauseProducing() {
    this.paused++
    this.log.push('pause')
  }
  resumeProducing() {
    this.resumed++
    this.log.push('resume')
    if (this.transport) this.bufferAtResume.push(this.transport.bufferSize)
  }
  stopProducing() {
    this.stopped++
    this.log.push('stop')
  }
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  const conn = (kind: PairKind, P: typeof Rec = Rec) => adoptedConnection(r, kind, cleanups, P)

  test(`${tag} streaming producer: paused inside the write that crosses 65536 buffered bytes, resumed on drain`, async (t) => {
    const { p, peer } = await conn('unix')
    peer.sock.pause()
    const prod = new Producer(p.t)
    p.t.registerProducer(prod, true)
    t.is(prod.resumed, 0, 'a streaming producer is not resumed on registration')
    const chunk = Buffer.alloc(16 * 1024, 0x61)
    let total = 0
    let crossing: { before: number; after: number } | undefined
    for (let i = 0; i < 4096 && !crossing; i++) {
      const before = p.t.bufferSize
      const pausedBefore = prod.paused
      p.t.write(chunk)
      total += chunk.length
      const after = p.t.bufferSize
      if (prod.paused > pausedBefore) crossing = { before, after }
      else if (after > LINE) {
        t.fail(`bufferSize went from ${before} to ${after} without pauseProducing`)
        break
      }
    }
    t.truthy(crossing, 'pauseProducing was called synchronously inside a write')
    if (crossing) {
      t.true(crossing.before <= LINE, `before the write: ${crossing.before}`)
      t.true(crossing.after > LINE, `after the write: ${crossing.after}`)
    }
    t.is(prod.paused, 1)
    t.is(prod.resumed, 0)
    peer.sock.resume()
    await waitUntil(() => prod.resumed === 1, 'resumeProducing after the drain', 10000)
    t.deepEqual(prod.bufferAtResume, [0], 'resumed when the buffer drained')
    await peer.waitBytes(total, 10000)
    t.is(peer.data.length, total)
    p.t.unregisterProducer()
    p.t.loseConnection()
    await peer.waitEnd()
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
    t.is(prod.stopped, 0, 'an unregistered producer is not stopped')
  })

  test(`${tag} pull producer: first resumeProducing inside registerProducer, then after each drain`, async (t) => {
    const { p, peer } = await conn('unix')
    const chunk = Buffer.alloc(1024 * 1024, 0x62) // larger than the socket buffers: every write queues
    const N = 4
    let inRegister = false
    const calledInRegister: boolean[] = []
    const prod = new Producer(p.t)
    prod.resumeProducing = function () {
      Producer.prototype.resumeProducing.call(this)
      calledInRegister.push(inRegister)
      if (this.resumed <= N) p.t.write(chunk)
      else {
        p.t.unregisterProducer()
        p.t.loseConnection()
      }
    }
    inRegister = true
    p.t.registerProducer(prod, false)
    inRegister = false
    t.is(prod.resumed, 1)
    t.deepEqual(calledInRegister, [true], 'the first resumeProducing runs synchronously inside registerProducer')
    await peer.waitEnd(20000)
    t.is(peer.data.length, N * chunk.length)
    t.is(prod.resumed, N + 1)
    t.true(calledInRegister.slice(1).every((x) => !x))
    t.is(prod.paused, 0, 'a pull producer is never paused')
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
  })

  test(`${tag} pull producer with small writes to a reading peer is resumed until it unregisters`, async (t) => {
    const { p, peer } = await conn('v4')
    const N = 10
    const prod = new Producer()
    prod.resumeProducing = function () {
      Producer.prototype.resumeProducing.call(this)
      if (this.resumed <= N) p.t.write(`chunk${this.resumed};`)
      else {
        p.t.unregisterProducer()
        p.t.loseConnection()
      }
    }
    p.t.registerProducer(prod, false)
    await peer.waitEnd()
    t.is(peer.text, Array.from({ length: N }, (_, i) => `chunk${i + 1};`).join(''))
    t.is(prod.resumed, N + 1)
  })

  test(`${tag} registering a second producer throws; after unregisterProducer another may register`, async (t) => {
    const { p, peer } = await conn('v4')
    const a = new Producer()
    const b = new Producer()
    p.t.registerProducer(a, true)
    t.throws(() => p.t.registerProducer(b, true))
    t.throws(() => p.t.registerProducer(b, false))
    t.is(b.resumed, 0, 'the rejected pull producer was not resumed')
    p.t.unregisterProducer()
    t.notThrows(() => p.t.registerProducer(b, true))
    p.t.unregisterProducer()
    p.t.loseConnection()
    await peer.waitEnd()
    await within(p.waitLost(), 'lost')
    t.is(a.stopped, 0)
    t.is(b.stopped, 0)
  })

  for (const how of ['end', 'reset'] as const) {
    test(`${tag} the producer gets stopProducing when the connection is lost (peer ${how})`, async (t) => {
      const { p, peer } = await conn('v4')
      const prod = new Producer()
      p.t.registerProducer(prod, true)
      if (how === 'end') peer.sock.end()
      else peer.sock.resetAndDestroy()
      await within(p.waitLost(), 'lost')
      await waitUntil(() => prod.stopped > 0, 'stopProducing')
      t.is(prod.stopped, 1)
      await quietPeriod(30, 'a second stopProducing')
      t.is(prod.stopped, 1)
    })
  }

  test(`${tag} the producer gets stopProducing after abortConnection`, async (t) => {
    const { p } = await conn('v4')
    const prod = new Producer()
    p.t.registerProducer(prod, false)
    p.t.abortConnection()
    await within(p.waitLost(), 'lost')
    await waitUntil(() => prod.stopped > 0, 'stopProducing')
    t.is(prod.stopped, 1)
  })

  test(`${tag} loseConnection with a producer registered: flush, close, then stopProducing`, async (t) => {
    const { p, peer } = await conn('unix')
    peer.sock.pause()
    const prod = new Producer()
    p.t.registerProducer(prod, true)
    const big = Buffer.alloc(1024 * 1024, 0x63)
    p.t.write(big)
    p.t.loseConnection()
    t.is(prod.stopped, 0, 'not stopped while data is still pending')
    peer.sock.resume()
    await peer.waitEnd(10000)
    t.is(peer.data.length, big.length, 'all data flushed before the close')
    await waitUntil(() => prod.stopped > 0, 'stopProducing')
    t.is(prod.stopped, 1)
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
  })
}
