// No fd is leaked (docs/guarantees.md): churn through accepted connections, adopted connections (kept
// and declined), datagram ports, failures; afterwards the fd table and thread count are back where they
// were. Serial: compares /proc/self/fd.
import test from 'ava'
import { Reactor, AddressFamily, UnsupportedAddressFamily } from 'reactor-socket'
import {
  MODES,
  Rec,
  RecFactory,
  DgramRec,
  adoptablePair,
  listenTcp4,
  bindUdp4,
  nodeClient,
  portOf,
  closeFd,
  closeTracked,
  closedFd,
  within,
  waitUntil,
  fdList,
  taskCount,
  warmThreadPool,
  linkOf,
  fdsWithLink,
  addedFds,
  settleFds,
} from '../helpers.js'

test.before(async () => {
  await warmThreadPool()
})
test.after.always(() => closeTracked())

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} accepted connections opened and closed leave no fd behind`, async (t) => {
    const warmFd = listenTcp4()
    const fd = listenTcp4()
    const base = fdList()
    const r = new Reactor({ thread: mode.thread })
    const warm = r.adoptStreamPort(warmFd, AddressFamily.INET, new RecFactory())
    await within(warm.stopListening(), 'warm-up')
    const fds = fdList()
    const f = new RecFactory()
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    for (let round = 0; round < 3; round++) {
      const clients = await Promise.all(Array.from({ length: 10 }, () => nodeClient(portOf(fd))))
      clients.forEach((c, i) => c.sock.write(`r${round}c${i}`))
      await Promise.all(clients.map((c, i) => c.waitText(`r${round}c${i}`)))
      if (round === 1) clients.forEach((c) => c.sock.resetAndDestroy())
      else clients.forEach((c) => c.sock.end())
      await Promise.all(clients.map((c) => c.waitClose()))
    }
    await waitUntil(() => f.built.length === 30 && f.built.every((p: any) => p.lostReasons.length === 1), 'all lost')
    await within(lp.stopListening(), 'stop')
    const same = () => JSON.stringify(fdList()) === JSON.stringify(fds)
    await waitUntil(same, 'the fd table to settle', 2000).catch(() => {})
    t.deepEqual(fdList(), fds)
    await within(r.close(), 'close')
    // close() is not documented to have closed the poller by the time it resolves: allow a moment
    t.deepEqual(await settleFds(base), [], 'close() released everything the reactor opened')
  })

  test.serial(`${tag} adopted connections (kept, declined, failing) leave no fd behind`, async (t) => {
    const warmFd = listenTcp4()
    const base = fdList()
    const r = new Reactor({ thread: mode.thread })
    const warm = r.adoptStreamPort(warmFd, AddressFamily.INET, new RecFactory())
    await within(warm.stopListening(), 'warm-up')
    for (let i = 0; i < 10; i++) {
      const x = await adoptablePair(i % 2 ? 'v4' : 'unix')
      const link = linkOf(x.fd)
      const before = fdList()
      if (i % 3 === 0) {
        t.is(r.adoptStreamConnection(x.fd, x.family, { buildProtocol: () => null }), undefined)
        t.deepEqual(fdList(), before, 'declined: nothing left open')
      } else if (i % 3 === 1) {
        t.throws(() => r.adoptStreamConnection(x.fd, AddressFamily.INET6, new RecFactory()), {
          instanceOf: UnsupportedAddressFamily,
        })
        t.deepEqual(fdList(), before, 'failed: nothing left open')
      } else {
        const p = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Rec))
        x.peer.sock.end()
        await within(p.waitLost(), 'lost')
        await x.peer.waitClose()
        t.deepEqual(fdsWithLink(link), [x.fd], 'duplicate closed after the loss')
      }
      closeFd(x.fd)
      x.cleanup()
    }
    await within(r.close(), 'close')
    // close() is not documented to have closed the poller by the time it resolves: allow a moment
    t.deepEqual(await settleFds(base), [], 'close() released everything the reactor opened')
  })

  test.serial(`${tag} failed adoptions of every kind leave the fd table and threads unchanged`, async (t) => {
    const l = listenTcp4()
    const u = bindUdp4()
    const fds = fdList()
    const tasks = taskCount()
    for (let i = 0; i < 20; i++) {
      const r = new Reactor({ thread: mode.thread })
      t.throws(() => r.adoptStreamPort(u, AddressFamily.INET, new RecFactory()))
      t.throws(() => r.adoptStreamConnection(l, AddressFamily.INET, new RecFactory()))
      t.throws(() => r.adoptDatagramPort(l, AddressFamily.INET, new DgramRec()))
      t.throws(() => r.adoptDatagramPort(u, AddressFamily.INET6, new DgramRec()))
      t.throws(() => r.adoptStreamPort(closedFd(), AddressFamily.INET, new RecFactory()))
      await r.close()
    }
    t.deepEqual(addedFds(fds), [], 'no fd left open by failed adoptions')
    t.is(taskCount(), tasks)
  })
}
