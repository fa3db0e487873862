// Faults: descriptor-number reuse. The caller closes its fd right after adopting, and something
// else (here: one end of a fresh socketpair) gets the same number. Whatever the reactor does later
// (serving, writing, stopListening, loseConnection, abortConnection, the peer's close, reactor.close)
// goes to its own duplicate only: the new socket under the old number is still open, is the same
// socket, and received nothing. Both reactor modes. Serial (relies on the lowest free fd number).
import test from 'ava'
import * as fs from 'node:fs'
import { AddressFamily, ConnectionDone, ConnectionAborted, sockets } from 'reactor-socket'
import {
  MODES,
  adoptablePair,
  listenTcp4,
  bindUdp4,
  nodeClient,
  closeFd,
  within,
  waitUntil,
  linkOf,
  track,
  wrapFd,
  udpPeer,
  Peer,
  reactorHarness,
  plainRecFactory,
  DgramRec,
  exactlyOnce,
  settleFds,
  className,
  quietPeriod,
  fileTeardown,
} from '../helpers.js'

fileTeardown()

/**
 * Closes the caller's `fd` and makes a new socket get the same number: fills every lower free
 * number with /dev/null first, then makes a socketpair (the lowest free number is now `fd`).
 * Returns the new socket's link (its inode) and a Node socket on the pair's other end.
 */
function closeAndReuse(t: any, fd: number): { link: string; other: Peer } {
  for (let attempt = 0; attempt < 5; attempt++) {
    closeFd(fd)
    const fillers: number[] = []
    try {
      for (;;) {
        const n = fs.openSync('/dev/null', 'r')
        if (n === fd) {
          fs.closeSync(n)
          break
        }
        fillers.push(n)
        if (n > fd) throw new Error(`fd ${fd} was taken by someone else`)
      }
      const [a, b] = sockets.socketPair()
      if (a !== fd) {
        sockets.close(a)
        sockets.close(b)
        continue
      }
      track(a)
      const other = wrapFd(track(b))
      t.teardown(() => other.destroy())
      return { link: linkOf(fd), other }
    } finally {
      for (const n of fillers) fs.closeSync(n)
    }
  }
  throw new Error(`could not get fd number ${fd} again`)
}

/** The socket now under `fd` is still the same, still open, received nothing, and still works. */
async function intact(t: any, fd: number, link: string, other: Peer) {
  t.is(linkOf(fd), link, `fd ${fd} is still the new socket`)
  t.is(sockets.info(fd).family, AddressFamily.UNIX)
  await quietPeriod(30, 'a write, shutdown or close by the reactor on a number it no longer owns')
  t.is(other.data.length, 0, 'nothing was written to the new socket')
  t.false(other.ended || other.closed, 'the new socket was neither shut down nor closed')
  other.sock.write('ping')
  await waitUntil(() => {
    try {
      return fs.readSync(fd, Buffer.alloc(16)) > 0
    } catch {
      return false
    }
  }, 'the new socket still carries data')
  fs.writeSync(fd, 'pong')
  await other.waitText('pong')
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  for (const end of ['stopListening', 'reactor.close()'] as const) {
    test.serial(`${tag} stream port: the old number reused, the port serves, then ${end}: the new socket is untouched`, async (t) => {
      const h = reactorHarness(t, mode)
      const fd = listenTcp4()
      const f = plainRecFactory((p) => (p.onData = (q, d) => q.t.write(d)))
      const lp = h.r.adoptStreamPort(fd, AddressFamily.INET, f)
      const { link, other } = closeAndReuse(t, fd)
      const c = await nodeClient((lp.getHost() as any).port)
      t.teardown(() => c.destroy())
      c.sock.write('served through the duplicate')
      await c.waitText('served through the duplicate')
      if (end === 'stopListening') await within(lp.stopListening(), 'stop')
      else await within(h.r.close(), 'close')
      c.destroy()
      await intact(t, fd, link, other)
      await within(h.r.close(), 'close')
      t.deepEqual(h.reported, [])
    })
  }

  for (const end of ['loseConnection', 'abortConnection', 'peer EOF', 'reactor.close()'] as const) {
    test.serial(`${tag} adopted connection: the old number reused, writes reach the peer, then ${end}: the new socket is untouched`, async (t) => {
      const h = reactorHarness(t, mode)
      const x = await adoptablePair('v4')
      t.teardown(x.cleanup)
      const f = plainRecFactory()
      h.r.adoptStreamConnection(x.fd, x.family, f)
      const p = f.built[0]
      const { link, other } = closeAndReuse(t, x.fd)
      p.t.write('to the peer')
      await x.peer.waitText('to the peer')
      x.peer.sock.write('from the peer')
      await p.waitBytes(13)
      if (end === 'loseConnection') p.t.loseConnection()
      else if (end === 'abortConnection') p.t.abortConnection()
      else if (end === 'peer EOF') x.peer.sock.end()
      else await within(h.r.close(), 'close')
      const reason = await within(p.waitLost(), 'connectionLost')
      t.true(
        end === 'abortConnection' || end === 'reactor.close()' ? reason instanceof ConnectionAborted : reason instanceof ConnectionDone,
        className(reason),
      )
      await exactlyOnce(t, p)
      await x.peer.waitClose()
      await intact(t, x.fd, link, other)
      await within(h.r.close(), 'close')
      t.deepEqual(h.reported, [])
    })
  }

  for (const end of ['stopListening', 'reactor.close()'] as const) {
    test.serial(`${tag} datagram port: the old number reused, the port still receives and sends, then ${end}: the new socket is untouched`, async (t) => {
      const h = reactorHarness(t, mode)
      const fd = bindUdp4()
      const d = new DgramRec()
      const dp = h.r.adoptDatagramPort(fd, AddressFamily.INET, d)
      const { link, other } = closeAndReuse(t, fd)
      const peer = await udpPeer()
      t.teardown(() => peer.close())
      await peer.send('hello', dp.getHost().port, '127.0.0.1')
      await waitUntil(() => d.got.length === 1, 'datagram')
      dp.write('back', ['127.0.0.1', peer.port])
      await peer.waitCount(1)
      if (end === 'stopListening') await within(dp.stopListening(), 'stop')
      else await within(h.r.close(), 'close')
      await intact(t, fd, link, other)
      await within(h.r.close(), 'close')
      t.deepEqual(h.reported, [])
    })
  }

  test.serial(`${tag} adopt, reuse, stop, close: once the test's own socketpair is closed, no fd is left`, async (t) => {
    const h = reactorHarness(t, mode)
    const fd = listenTcp4()
    const lp = h.r.adoptStreamPort(fd, AddressFamily.INET, plainRecFactory())
    const { link, other } = closeAndReuse(t, fd)
    await within(lp.stopListening(), 'stop')
    await within(h.r.close(), 'close')
    await intact(t, fd, link, other)
    other.destroy()
    await other.waitClose()
    closeFd(fd)
    t.deepEqual(await settleFds(h.before), [])
  })
}
