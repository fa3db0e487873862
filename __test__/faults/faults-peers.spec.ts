// Faults: peers that vanish. A reset in the middle of a large write (adopted and accepted
// connections), a reset while the transport is paused, a FIN while a write is queued (the peer then
// reads, or goes away), half-open connections (a peer that holds its socket and does nothing; a peer
// process killed with SIGKILL, idle or with unread bytes). Each time: connectionLost exactly once,
// with the right reason, never re-entrantly; nothing reported to onError; and once the reactor is
// closed not a single fd it opened is left. Both reactor modes. Serial: compares /proc/self/fd.
import test from 'ava'
import * as crypto from 'node:crypto'
import { AddressFamily, ConnectionDone, ConnectionLost, ConnectionAborted, sockets } from 'reactor-socket'
import {
  MODES,
  adoptablePair,
  listenTcp4,
  nodeClient,
  closeFd,
  within,
  waitUntil,
  linkOf,
  fdsWithLink,
  track,
  fixture,
  child,
  reactorHarness,
  plainRecFactory,
  exactlyOnce,
  inCall,
  className,
  nodeSocketInode,
  partlyWritten,
  quietPeriod,
  receiveQueue,
  socketInode,
  writtenIntoPeerKernel,
  fileTeardown,
} from '../helpers.js'

fileTeardown({ warmThreadPool: true })

const RESET_CODES = ['ECONNRESET', 'EPIPE']

/** A reason that is a ConnectionLost from the kernel (not Done, not our own abort) with a reset code. */
function isReset(t: any, reason: any) {
  t.true(reason instanceof ConnectionLost, `a ConnectionLost, got ${className(reason)}: ${reason?.message}`)
  t.false(reason instanceof ConnectionDone)
  t.false(reason instanceof ConnectionAborted, 'not our abort')
  t.true(RESET_CODES.includes(reason?.code), `code ${reason?.code}`)
}

const big = (n: number) => crypto.randomBytes(n)

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  for (const kind of ['v4', 'v6'] as const) {
    test.serial(`${tag} ${kind}: RST in the middle of a large write (adopted connection) → ConnectionLost once, queue dropped`, async (t) => {
      const h = reactorHarness(t, mode)
      const x = await adoptablePair(kind)
      t.teardown(x.cleanup)
      const link = linkOf(x.fd)
      const payload = big(32 * 1024 * 1024)
      const f = plainRecFactory((p) => {
        p.onMade = () => {
          for (let off = 0; off < payload.length; off += 65536) p.t.write(payload.subarray(off, off + 65536))
        }
      })
      h.r.adoptStreamConnection(x.fd, x.family, f)
      closeFd(x.fd) // the reactor's duplicate is the last reference: the reset reaches it
      const p = f.built[0]
      t.true(p.t.bufferSize > 1024 * 1024, `a large write is queued (${p.t.bufferSize})`)
      await x.peer.waitBytes(1024 * 1024)
      x.peer.sock.resetAndDestroy()
      isReset(t, await within(p.waitLost(), 'connectionLost'))
      await exactlyOnce(t, p)
      t.false(p.t.connected)
      t.is(p.t.bufferSize, 0, 'the queue was dropped')
      t.notThrows(() => inCall(() => p.t.write('after the reset')), 'writes after the loss are dropped silently')
      t.deepEqual(fdsWithLink(link), [], 'the duplicate is closed')
      x.cleanup()
      await h.finish()
    })
  }

  test.serial(`${tag} RST in the middle of a large write (accepted connection) → ConnectionLost once, the port keeps serving`, async (t) => {
    const h = reactorHarness(t, mode)
    const lfd = listenTcp4()
    const payload = big(32 * 1024 * 1024)
    const f = plainRecFactory((p) => {
      p.onMade = () => p.t.write(payload)
    })
    const port = h.r.adoptStreamPort(lfd, AddressFamily.INET, f)
    closeFd(lfd)
    const c = await nodeClient((port.getHost() as any).port)
    t.teardown(() => c.destroy())
    await c.waitBytes(2 * 1024 * 1024)
    c.sock.resetAndDestroy()
    await waitUntil(() => f.built.length === 1, 'built')
    const p = f.built[0]
    isReset(t, await within(p.waitLost(), 'connectionLost'))
    await exactlyOnce(t, p)
    // the port keeps serving
    const f2 = f.built.length
    const c2 = await nodeClient((port.getHost() as any).port)
    t.teardown(() => c2.destroy())
    await waitUntil(() => f.built.length === f2 + 1, 'second connection built')
    f.built[f2].t.abortConnection()
    await c2.waitClose()
    await exactlyOnce(t, f.built[f2])
    t.true(f.built[f2].reason instanceof ConnectionAborted)
    await h.finish()
  })

  test.serial(`${tag} RST while the transport is paused → ConnectionLost(ECONNRESET) once, no data delivered`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('v4')
    t.teardown(x.cleanup)
    const f = plainRecFactory((p) => {
      p.onMade = () => p.t.pauseProducing()
    })
    h.r.adoptStreamConnection(x.fd, x.family, f)
    const ours = socketInode(x.fd) // names the reactor's duplicate too, after the close
    closeFd(x.fd)
    const p = f.built[0]
    x.peer.sock.write(big(256 * 1024))
    // the bytes are in our receive buffer (or read and held), unread by the protocol
    await waitUntil(
      () => receiveQueue(ours) > 0 || writtenIntoPeerKernel(x.peer.sock),
      'the bytes at our end before the reset',
    )
    x.peer.sock.resetAndDestroy()
    const reason = await within(p.waitLost(), 'connectionLost while paused')
    isReset(t, reason)
    t.is(reason.code, 'ECONNRESET')
    t.is(p.bytes, 0, 'nothing delivered while paused')
    inCall(() => p.t.resumeProducing()) // after the loss: a no-op
    await exactlyOnce(t, p)
    t.is(p.bytes, 0, 'nothing delivered after the loss either')
    x.cleanup()
    await h.finish()
  })

  test.serial(`${tag} FIN while paused: nothing until resume, then every byte in order, then ConnectionDone once`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('unix')
    t.teardown(x.cleanup)
    const f = plainRecFactory((p) => {
      p.onMade = () => p.t.pauseProducing()
    })
    h.r.adoptStreamConnection(x.fd, x.family, f)
    closeFd(x.fd)
    const p = f.built[0]
    const payload = big(3 * 1024 * 1024)
    x.peer.sock.end(payload) // more than the socket buffer: the peer is pushed back until we resume
    await waitUntil(() => partlyWritten(x.peer.sock), 'the first bytes in our receive buffer')
    await quietPeriod(200, 'data or the FIN delivered while paused')
    t.is(p.bytes, 0)
    t.is(p.lostReasons.length, 0, 'the FIN is not delivered before the data')
    inCall(() => p.t.resumeProducing())
    const reason = await within(p.waitLost(), 'connectionLost')
    t.true(reason instanceof ConnectionDone, className(reason))
    t.true(p.data.equals(payload), 'every byte, in order')
    await exactlyOnce(t, p)
    x.cleanup()
    await h.finish()
  })

  test.serial(`${tag} FIN while a large write is queued, then the peer reads: everything flushed, then ConnectionDone once`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('v4', { allowHalfOpen: true })
    t.teardown(x.cleanup)
    const payload = big(16 * 1024 * 1024)
    const f = plainRecFactory((p) => {
      p.onMade = () => p.t.write(payload)
    })
    h.r.adoptStreamConnection(x.fd, x.family, f)
    closeFd(x.fd)
    const p = f.built[0]
    x.peer.sock.pause() // not reading yet
    await waitUntil(() => receiveQueue(nodeSocketInode(x.peer.sock)) > 0, 'our bytes in the peer\'s receive buffer')
    t.true(p.t.bufferSize > 0, 'a write is queued')
    x.peer.sock.end() // FIN while our write is queued
    await x.peer.waitDelivered()
    await quietPeriod(100, 'connectionLost while the queue still flushes')
    t.is(p.lostReasons.length, 0, 'not lost while the queue still flushes')
    x.peer.sock.resume()
    await within(x.peer.endP, 'peer EOF', 10000)
    t.true(x.peer.data.equals(payload), 'the peer got every byte, in order, before our FIN')
    const reason = await within(p.waitLost(), 'connectionLost')
    t.true(reason instanceof ConnectionDone, className(reason))
    await exactlyOnce(t, p)
    x.cleanup()
    await h.finish()
  })

  test.serial(`${tag} FIN while a large write is queued, then the peer goes away → ConnectionLost once`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('v4', { allowHalfOpen: true })
    t.teardown(x.cleanup)
    const f = plainRecFactory((p) => {
      p.onMade = () => p.t.write(big(16 * 1024 * 1024))
    })
    h.r.adoptStreamConnection(x.fd, x.family, f)
    closeFd(x.fd)
    const p = f.built[0]
    x.peer.sock.pause()
    x.peer.sock.end()
    await x.peer.waitDelivered()
    await quietPeriod(100, 'connectionLost on the FIN while our write is queued')
    t.is(p.lostReasons.length, 0)
    x.peer.sock.destroy() // closes with unread bytes: the kernel resets
    isReset(t, await within(p.waitLost(), 'connectionLost'))
    await exactlyOnce(t, p)
    x.cleanup()
    await h.finish()
  })

  test.serial(`${tag} half-close protocol: FIN while a write is queued → readConnectionLost, writes go on, then ConnectionDone once`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('unix', { allowHalfOpen: true })
    t.teardown(x.cleanup)
    const a = big(4 * 1024 * 1024)
    const b = big(1024 * 1024)
    let readLost = 0
    let readLostDepth = -1
    const f = plainRecFactory((p) => {
      p.onMade = () => p.t.write(a)
      ;(p as any).readConnectionLost = () => {
        readLost++
        readLostDepth = 0
        inCall(() => {
          p.t.write(b)
          p.t.loseConnection()
        })
      }
    })
    h.r.adoptStreamConnection(x.fd, x.family, f)
    closeFd(x.fd)
    const p = f.built[0]
    x.peer.sock.end()
    const reason = await within(p.waitLost(), 'connectionLost', 10000)
    t.true(reason instanceof ConnectionDone, className(reason))
    t.is(readLost, 1)
    t.is(readLostDepth, 0)
    await within(x.peer.endP, 'peer EOF', 10000)
    t.true(x.peer.data.equals(Buffer.concat([a, b])), 'the peer got both writes, in order')
    await exactlyOnce(t, p)
    x.cleanup()
    await h.finish()
  })

  test.serial(`${tag} half-open: a peer that holds its socket and does nothing; loseConnection waits, abortConnection ends it once`, async (t) => {
    const h = reactorHarness(t, mode)
    const [mine, theirs] = sockets.socketPair()
    track(mine)
    track(theirs) // the silent peer: never read, never written, never closed (until the end)
    const f = plainRecFactory()
    h.r.adoptStreamConnection(mine, AddressFamily.UNIX, f)
    closeFd(mine)
    const p = f.built[0]
    inCall(() => p.t.write(big(4 * 1024 * 1024)))
    t.true(p.t.bufferSize > 0, 'bytes are stuck in the queue')
    inCall(() => p.t.loseConnection())
    t.true(p.t.disconnecting)
    await quietPeriod(300, 'loseConnection finishing while the peer never reads')
    t.is(p.lostReasons.length, 0, 'loseConnection cannot finish while the peer never reads')
    t.true(p.t.connected)
    inCall(() => p.t.abortConnection())
    const reason = await within(p.waitLost(), 'connectionLost')
    t.true(reason instanceof ConnectionAborted, className(reason))
    await exactlyOnce(t, p)
    closeFd(theirs)
    await h.finish()
  })

  test.serial(`${tag} half-open: reactor.close() with a stuck connection → ConnectionAborted once, nothing left`, async (t) => {
    const h = reactorHarness(t, mode)
    const [mine, theirs] = sockets.socketPair()
    track(mine)
    track(theirs)
    const f = plainRecFactory()
    h.r.adoptStreamConnection(mine, AddressFamily.UNIX, f)
    closeFd(mine)
    const p = f.built[0]
    inCall(() => p.t.write(big(4 * 1024 * 1024)))
    inCall(() => p.t.loseConnection())
    await within(h.r.close(), 'close')
    t.true(p.reason instanceof ConnectionAborted, className(p.reason))
    await exactlyOnce(t, p)
    closeFd(theirs)
    await h.finish()
  })

  for (const how of ['idle', 'unread'] as const) {
    test.serial(`${tag} a peer process killed with SIGKILL (${how}) → ${how === 'idle' ? 'ConnectionDone' : 'ConnectionLost(ECONNRESET)'} once`, async (t) => {
      const h = reactorHarness(t, mode)
      const lfd = listenTcp4()
      const f = plainRecFactory()
      const port = h.r.adoptStreamPort(lfd, AddressFamily.INET, f)
      closeFd(lfd)
      const c = child(fixture('faults-peer.mjs'), [String((port.getHost() as any).port)])
      t.teardown(() => c.kill())
      await c.line('READY ')
      await waitUntil(() => f.built.length === 1, 'accepted')
      const p = f.built[0]
      if (how === 'unread') {
        inCall(() => p.t.write(big(64 * 1024))) // sits unread in the peer's receive buffer
        const theirs = { localPort: p.t.getPeer().port, remotePort: p.t.getHost().port }
        await waitUntil(() => receiveQueue(theirs) > 0, "the bytes in the peer process's receive buffer")
      }
      c.kill()
      await c.exited
      const reason = await within(p.waitLost(), 'connectionLost')
      if (how === 'idle') t.true(reason instanceof ConnectionDone, className(reason))
      else {
        isReset(t, reason)
        t.is(reason.code, 'ECONNRESET')
      }
      await exactlyOnce(t, p)
      await h.finish()
    })
  }
}

