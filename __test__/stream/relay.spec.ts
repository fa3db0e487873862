// reactor.relay(a, b): bytes move inside the core (splice through pooled pipes), never through
// the protocols; order with what each transport held, half-close, errors, loseConnection /
// abortConnection, idleTimeout, counts, bad calls. Both reactor modes, TCP and UNIX.
import test from 'ava'
import * as crypto from 'node:crypto'
import * as net from 'node:net'
import { Reactor, ConnectionDone, ConnectionLost, ConnectionAborted } from 'reactor-socket'
import { MODES, Rec, RecFactory, adoptablePair, closeFd, fdList, fileTeardown, settleFds, within, waitUntil, type PairKind, type Peer } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

/** A protocol that records what it is told; the relay must leave `chunks` empty. */
async function adopted(r: Reactor, kind: PairKind, allowHalfOpen = true): Promise<{ p: any; peer: Peer }> {
  const x = await adoptablePair(kind, { allowHalfOpen })
  cleanups.push(x.cleanup)
  const p: any = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Rec))
  closeFd(x.fd)
  return { p, peer: x.peer }
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex')

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)

  for (const kind of ['v4', 'unix'] as PairKind[]) {
    test(`${tag} ${kind}: 8 MiB each way, in order, half-close kept, counts, connectionLost(ConnectionDone) once each`, async (t) => {
      const a = await adopted(r, kind)
      const b = await adopted(r, kind)
      const done = r.relay(a.p.t, b.p.t)
      const up = crypto.randomBytes(8 << 20)
      const down = crypto.randomBytes(8 << 20)
      a.peer.sock.end(up)
      await within(b.peer.endP, 'b peer sees a peer\'s FIN', 20000)
      t.is(sha(b.peer.data), sha(up))
      b.peer.sock.end(down) // the other direction still flows after the first half-close
      await within(a.peer.endP, 'a peer sees b peer\'s FIN', 20000)
      t.is(sha(a.peer.data), sha(down))
      t.deepEqual(await within(done, 'relay result'), { aToB: up.length, bToA: down.length })
      for (const x of [a, b]) {
        t.is(x.p.lostReasons.length, 1)
        t.true(x.p.reason instanceof ConnectionDone)
        t.is(x.p.data.length, 0, 'no dataReceived during the relay')
      }
    })
  }

  test(`${tag} order: bytes the destination queued and bytes the source held go out before relayed bytes`, async (t) => {
    const a = await adopted(r, 'unix')
    const b = await adopted(r, 'unix')
    a.p.t.pauseProducing()
    a.peer.sock.write('held-in-the-kernel;')
    b.p.t.write('written-by-b-first;')
    await b.peer.waitBytes(19)
    const done = r.relay(a.p.t, b.p.t)
    a.peer.sock.end('relayed')
    await b.peer.waitEnd()
    t.is(b.peer.data.toString(), 'written-by-b-first;held-in-the-kernel;relayed')
    b.peer.sock.end()
    t.deepEqual(await done, { aToB: 26, bToA: 0 })
  })

  test(`${tag} relay() from inside dataReceived: the rest of that batch is relayed, not delivered`, async (t) => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
    cleanups.push(() => server.close())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const b: any = await r.connectTCP('127.0.0.1', (server.address() as net.AddressInfo).port, new RecFactory(Rec))
    const a = await adopted(r, 'v4')
    let done: Promise<unknown> | null = null
    a.p.onData = () => {
      if (done === null) done = r.relay(a.p.t, b.t)
    }
    const payload = crypto.randomBytes(4 << 20)
    a.peer.sock.end(payload)
    await waitUntil(() => done !== null, 'relay started')
    await within(a.peer.endP, 'echo back through the relay', 20000)
    t.true(a.p.data.length > 0 && a.p.data.length < payload.length)
    t.is(sha(Buffer.concat([a.p.data, a.peer.data])), sha(payload), 'what the protocol saw, then what was relayed (and echoed back)')
    await done
  })

  test(`${tag} a reset on one side ends the relay: ConnectionLost with a code on both, the promise resolves`, async (t) => {
    const a = await adopted(r, 'v4')
    const b = await adopted(r, 'v4')
    const done = r.relay(a.p.t, b.p.t)
    a.peer.sock.write('x')
    await b.peer.waitBytes(1)
    a.peer.sock.resetAndDestroy()
    const counts = await within(done, 'relay result')
    t.is((counts as any).aToB, 1)
    for (const x of [a, b]) {
      t.is(x.p.lostReasons.length, 1)
      t.true(x.p.reason instanceof ConnectionLost, `${x.p.reason}`)
      t.is(typeof x.p.reason.code, 'string')
    }
  })

  test(`${tag} a reset after the kernel acknowledged 4 MiB: every one of those bytes still reaches the other side`, async (t) => {
    const a = await adopted(r, 'v4')
    const b = await adopted(r, 'v4')
    b.p.t.pauseProducing()
    const done = r.relay(a.p.t, b.p.t, { bufferSize: 64 * 1024 })
    b.peer.sock.pause() // b's peer reads nothing yet: the bytes back up into a's receive queue
    const payload = crypto.randomBytes(4 << 20)
    a.peer.sock.write(payload)
    await a.peer.waitDelivered(20000) // all of it acknowledged by the kernel at our end
    a.peer.sock.resetAndDestroy()
    b.peer.sock.resume()
    await within(b.peer.endP, "b peer sees the end after the bytes", 20000)
    t.is(sha(b.peer.data), sha(payload), 'no acknowledged byte lost')
    t.deepEqual(await done, { aToB: payload.length, bToA: 0 })
    t.true(a.p.reason instanceof ConnectionLost)
    t.true(b.p.reason instanceof ConnectionLost)
  })

  test(`${tag} loseConnection() on either side ends the relay in order; abortConnection() aborts both`, async (t) => {
    const a = await adopted(r, 'unix')
    const b = await adopted(r, 'unix')
    const done = r.relay(a.p.t, b.p.t)
    a.peer.sock.write('before the close')
    await b.peer.waitBytes(16)
    b.p.t.loseConnection()
    t.deepEqual(await within(done, 'orderly end'), { aToB: 16, bToA: 0 })
    t.true(a.p.reason instanceof ConnectionDone)
    t.true(b.p.reason instanceof ConnectionDone)
    await a.peer.waitEnd()
    await b.peer.waitEnd()

    const c = await adopted(r, 'unix')
    const d = await adopted(r, 'unix')
    const aborted = r.relay(c.p.t, d.p.t)
    c.p.t.abortConnection()
    await within(aborted, 'aborted relay')
    t.true(c.p.reason instanceof ConnectionAborted)
    t.true(d.p.reason instanceof ConnectionLost)
    t.is(d.p.reason.code, 'ECONNABORTED')
    t.is(c.p.lostReasons.length + d.p.lostReasons.length, 2)
  })

  test(`${tag} idleTimeout aborts both with ETIMEDOUT; traffic keeps it alive`, async (t) => {
    const a = await adopted(r, 'unix')
    const b = await adopted(r, 'unix')
    const done = r.relay(a.p.t, b.p.t, { idleTimeout: 2000 })
    let lastWrite = 0
    for (let i = 0; i < 4; i++) {
      lastWrite = Date.now() // the byte cannot move before it is written
      a.peer.sock.write('tick')
      await b.peer.waitBytes(4 * (i + 1))
      await new Promise((resolve) => setTimeout(resolve, 200)) // traffic every ~200 ms, far under the timeout (a loaded machine may stretch it)
    }
    t.is(a.p.lostReasons.length, 0, 'still relaying while bytes move')
    await within(done, 'idle relay aborted')
    t.true(Date.now() - lastWrite >= 2000, 'not before the timeout after the last byte')
    t.is(a.p.reason.code, 'ETIMEDOUT')
    t.is(b.p.reason.code, 'ETIMEDOUT')
  })

  test.serial(`${tag} bad calls throw ERR_INVALID_STATE synchronously and change nothing; relays leave no fd after the reactor closes`, async (t) => {
    const local = new Reactor({ thread: mode.thread })
    const other = new Reactor({ thread: mode.thread })
    reactors.push(other)
    const before = fdList()
    const a = await adopted(local, 'unix')
    const b = await adopted(local, 'unix')
    const o = await adopted(other, 'unix')
    const invalid = { code: 'ERR_INVALID_STATE' } as any
    t.throws(() => local.relay(a.p.t, a.p.t), invalid)
    t.throws(() => local.relay(a.p.t, o.p.t), invalid)
    t.throws(() => local.relay(a.p.t, {} as any), invalid)
    t.throws(() => local.relay(a.p.t, b.p.t, { bufferSize: 0 }), { instanceOf: RangeError })
    b.p.t.loseConnection()
    t.throws(() => local.relay(a.p.t, b.p.t), invalid, 'disconnecting')
    await b.p.waitLost()
    t.throws(() => local.relay(a.p.t, b.p.t), invalid, 'not connected')
    const c = await adopted(local, 'unix')
    const relaying = local.relay(a.p.t, c.p.t)
    t.throws(() => local.relay(a.p.t, c.p.t), invalid, 'already relaying')
    // still working: nothing was changed by the refused calls
    a.peer.sock.write('ok')
    await c.peer.waitBytes(2)
    for (const x of [a, b, c, o]) x.peer.destroy()
    await relaying
    await local.close()
    await other.close()
    t.deepEqual(await settleFds(before), [], 'pipes and sockets all closed')
  })
}
