// reactor.stats(): the counters match what the test did (accepts, open connections, exact bytes
// in and out, datagrams in and out, bytes queued while a peer does not read, relays), and the
// batch figures agree with each other. Both reactor modes, real sockets on loopback and UNIX pairs.
import test from 'ava'
import * as crypto from 'node:crypto'
import { Reactor, type ReactorStats } from 'reactor-socket'
import {
  MODES,
  Rec,
  RecFactory,
  DgramRec,
  adoptedConnection,
  bindUdp4,
  closeFd,
  fileTeardown,
  listenerOf,
  portOf,
  reactorHarness,
  udpPeer,
  waitUntil,
  within,
  type Mode,
  type Peer,
} from '../helpers.js'

fileTeardown()

const ZEROS: ReactorStats = {
  connectionsAccepted: 0,
  connectionsOpen: 0,
  bytesIn: 0,
  bytesOut: 0,
  bytesQueued: 0,
  datagramsIn: 0,
  datagramsOut: 0,
  datagramsDropped: 0,
  datagramsDroppedByKernel: 0,
  batches: 0,
  events: 0,
  eventsPerBatch: 0,
  wakeups: 0,
  wakeupsByIoThread: 0,
  relaysActive: 0,
  bytesRelayed: 0,
  tlsSessionsUserspace: 0,
  tlsSessionsKtls: 0,
  tlsHandshakeFailures: 0,
}

/** The batch figures agree with each other: a mean that is events/batches, and at most one
 *  wake-up per batch (an announcement is made only for a batch JS then takes). */
function batchFiguresAgree(t: any, s: ReactorStats, mode: Mode) {
  t.true(s.batches >= 1, `batches ≥ 1 (${s.batches})`)
  t.true(s.wakeups >= 1, `wake-ups ≥ 1 (${s.wakeups})`)
  t.true(s.wakeups <= s.batches, `a wake-up per batch at most (${s.wakeups} > ${s.batches})`)
  t.is(s.eventsPerBatch, s.events / s.batches)
  if (mode.thread) t.true(s.wakeupsByIoThread <= s.wakeups, "the I/O thread's wake-ups are a part of all wake-ups")
  else t.is(s.wakeupsByIoThread, 0, 'no I/O thread, no wake-up from one')
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} zeros before the first adoption; N accepts, exact bytes in and out, open connections; final figures after close`, async (t) => {
    const h = reactorHarness(t, mode)
    t.deepEqual(h.r.stats(), ZEROS)
    const l = listenerOf('v4')
    const factory = new RecFactory(Rec)
    const port = h.r.adoptStreamPort(l.fd, l.family, factory)
    closeFd(l.fd)
    const sizes = [1000, 2000, 3000]
    const peers: Peer[] = []
    for (const size of sizes) {
      const peer = await l.connect()
      t.teardown(() => peer.destroy())
      peer.sock.write(crypto.randomBytes(size))
      peers.push(peer)
    }
    await factory.waitBuilt(sizes.length)
    const total = sizes.reduce((a, b) => a + b, 0)
    await waitUntil(() => factory.built.reduce((n: number, p: Rec) => n + p.bytes, 0) === total, 'every byte at the protocols')
    let s = h.r.stats()
    t.is(s.connectionsAccepted, 3)
    t.is(s.connectionsOpen, 3)
    t.is(s.bytesIn, total, 'bytesIn is what the protocols got')
    t.true(s.events >= 6, `3 accepts and at least 3 data events (${s.events})`)
    batchFiguresAgree(t, s, mode)

    // Answers of known sizes: bytesOut counts what the kernel took.
    factory.built.forEach((p: Rec, i: number) => p.t.write(Buffer.alloc(100 * (i + 1), 'z')))
    await Promise.all(peers.map((peer, i) => peer.waitBytes(100 * (i + 1))))
    s = h.r.stats()
    t.is(s.bytesOut, 600)
    t.is(s.bytesQueued, 0)

    for (const p of factory.built as Rec[]) p.t.loseConnection()
    await Promise.all((factory.built as Rec[]).map((p) => p.waitLost()))
    s = h.r.stats()
    t.is(s.connectionsOpen, 0, 'closed connections are no longer open')
    t.is(s.connectionsAccepted, 3, 'totals stay')
    await port.stopListening()
    for (const peer of peers) peer.destroy()
    await h.finish()
    const after = h.r.stats()
    t.is(after.connectionsAccepted, 3, 'the final figures after close')
    t.is(after.bytesIn, total)
    t.is(after.connectionsOpen, 0)
  })

  test.serial(`${tag} bytesQueued > 0 while the peer does not read, back to 0 after it does`, async (t) => {
    const h = reactorHarness(t, mode)
    const mine: (() => void)[] = []
    t.teardown(() => mine.forEach((c) => c()))
    const { p, peer } = await adoptedConnection(h.r, 'v4', mine)
    peer.sock.pause() // Node stops reading: the kernel's buffers fill, then the core queues
    const payload = crypto.randomBytes(16 << 20)
    p.t.write(payload)
    const queued = h.r.stats().bytesQueued
    t.true(queued > 0, '16 MiB to a peer that does not read is partly queued')
    t.true(queued <= payload.length)
    t.is(h.r.stats().bytesOut, payload.length - queued, 'every byte is either sent or queued')
    peer.sock.resume()
    await peer.waitBytes(payload.length, 20000)
    await waitUntil(() => h.r.stats().bytesQueued === 0, () => `bytesQueued back to 0 (${h.r.stats().bytesQueued})`)
    t.is(h.r.stats().bytesOut, payload.length)
    p.t.loseConnection()
    await p.waitLost()
    mine.forEach((c) => c())
    await h.finish()
  })

  test.serial(`${tag} datagrams in and out, none dropped`, async (t) => {
    const h = reactorHarness(t, mode)
    const fd = bindUdp4()
    const proto = new DgramRec()
    // Answers written while a batch is handled leave together (as one GSO message where the
    // kernel takes it): each still counts as a datagram.
    proto.onDatagram = (p, _d, addr) => {
      for (let i = 0; i < 3; i++) p.t.write(Buffer.from('reply'), [addr.host, addr.port])
    }
    const dport = h.r.adoptDatagramPort(fd, 2, proto)
    const to = portOf(fd)
    closeFd(fd)
    const peer = await udpPeer()
    t.teardown(() => peer.close())
    for (let i = 0; i < 5; i++) await peer.send(`ping ${i}`, to, '127.0.0.1')
    await proto.waitCount(5)
    await peer.waitCount(15)
    for (let i = 0; i < 4; i++) proto.t.write(Buffer.from(`pong ${i}`), ['127.0.0.1', peer.port])
    await peer.waitCount(19)
    t.deepEqual(peer.got.map((g) => g.data.length).sort(), [...Array(15).fill(5), ...Array(4).fill(6)])
    const s = h.r.stats()
    t.is(s.datagramsIn, 5)
    t.is(s.datagramsOut, 19)
    t.is(s.datagramsDropped, 0)
    t.is(s.datagramsDroppedByKernel, 0)
    t.is(s.bytesIn, 0, 'datagrams are not stream bytes')
    batchFiguresAgree(t, s, mode)
    await dport.stopListening()
    t.is(h.r.stats().datagramsOut, 19, 'a stopped port still counts in the totals')
    peer.close()
    await h.finish()
  })

  test.serial(`${tag} relaysActive while a relay runs; bytesRelayed equals the relay's counts`, async (t) => {
    const h = reactorHarness(t, mode)
    const mine: (() => void)[] = []
    t.teardown(() => mine.forEach((c) => c()))
    const a = await adoptedConnection(h.r, 'unix', mine, Rec, { allowHalfOpen: true })
    const b = await adoptedConnection(h.r, 'unix', mine, Rec, { allowHalfOpen: true })
    const done = h.r.relay(a.p.t, b.p.t)
    t.is(h.r.stats().relaysActive, 1)
    a.peer.sock.end(crypto.randomBytes(300_000))
    b.peer.sock.end(crypto.randomBytes(1234))
    const counts = await within(done, 'the relay ends')
    t.deepEqual(counts, { aToB: 300_000, bToA: 1234 })
    const s = h.r.stats()
    t.is(s.relaysActive, 0)
    t.is(s.bytesRelayed, 301_234)
    t.is(s.bytesIn, 0, 'relayed bytes never reach JS')
    t.is(s.connectionsOpen, 0)
    mine.forEach((c) => c())
    await h.finish()
  })
}

test('a reactor that never adopted reports zeros; each call returns a fresh plain object', (t) => {
  const r = new Reactor()
  const a = r.stats()
  const b = r.stats()
  t.not(a, b)
  t.deepEqual(Object.keys(a).sort(), Object.keys(ZEROS).sort())
  a.bytesIn = 42
  t.is(r.stats().bytesIn, 0, 'changing a returned object changes nothing')
})
