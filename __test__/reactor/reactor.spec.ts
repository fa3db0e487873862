// docs/adopting.md "`Reactor` options" and "Lifetime": constructing opens nothing; the poller and thread come with
// the first successful adoption (none at all with thread: false); close() aborts connections
// (ConnectionAborted), stops ports, joins the thread, releases every fd, is idempotent; then every adopt
// throws ERR_REACTOR_CLOSED. Serial: compares /proc/self/fd and /proc/self/task.
import test from 'ava'
import { Reactor, AddressFamily, ConnectionAborted } from 'reactor-socket'
import {
  MODES,
  Rec,
  EchoRec,
  RecFactory,
  DgramRec,
  adoptablePair,
  listenTcp4,
  bindUdp4,
  nodeClient,
  portOf,
  closeFd,
  closeTracked,
  within,
  waitUntil,
  fdList,
  taskCount,
  warmThreadPool,
  linkOf,
  fdsWithLink,
} from '../helpers.js'

const extra: any[] = []
test.before(async () => {
  await warmThreadPool()
})
test.after.always(async () => {
  for (const r of extra) await r.close()
  closeTracked()
})

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} constructing a Reactor opens no fd and starts no thread; closing an unused one resolves`, async (t) => {
    const fds = fdList()
    const tasks = taskCount()
    const r = new Reactor({ thread: mode.thread })
    t.deepEqual(fdList(), fds)
    t.is(taskCount(), tasks)
    await within(r.close(), 'close')
    await within(r.close(), 'close again')
    t.deepEqual(fdList(), fds)
    t.is(taskCount(), tasks)
  })

  test.serial(`${tag} close() aborts connections, stops ports, releases every fd and thread; idempotent; then ERR_REACTOR_CLOSED`, async (t) => {
    const pairs = [await adoptablePair('v4'), await adoptablePair('unix')]
    const lfd = listenTcp4()
    const ufd = bindUdp4()
    const links = [lfd, ufd, ...pairs.map((p) => p.fd)].map(linkOf)
    const fds = fdList()
    const tasks = taskCount()
    const r = new Reactor({ thread: mode.thread })
    const f = new RecFactory()
    const lp = r.adoptStreamPort(lfd, AddressFamily.INET, f)
    const dp = new DgramRec()
    r.adoptDatagramPort(ufd, AddressFamily.INET, dp)
    const conns = pairs.map((p) => r.adoptStreamConnection(p.fd, p.family, new RecFactory(Rec)))
    // an accepted connection too
    const client = await nodeClient(portOf(lfd))
    await f.waitBuilt(1)
    if (mode.thread) t.true(taskCount() > tasks, 'an I/O thread runs')
    else t.is(taskCount(), tasks, 'thread: false starts no thread')
    const closing = r.close()
    await within(closing, 'close')
    for (const p of [...conns, f.built[0]]) {
      t.is(p.lostReasons.length, 1)
      t.true(p.reason instanceof ConnectionAborted, `got ${p.reason}`)
    }
    t.is(f.doStops, 1)
    t.is(f.stops, 1)
    t.is(dp.stops, 1)
    t.falsy(dp.t)
    t.deepEqual((lp.getHost() as any).port, portOf(lfd))
    for (const l of links) t.is(fdsWithLink(l).length, 1, 'every duplicate closed')
    await client.waitClose()
    await waitUntil(() => taskCount() === tasks, 'thread joined', 2000).catch(() => {})
    t.is(taskCount(), tasks, 'close() joined the I/O thread')
    const now = new Set(fdList())
    const added = [...now].filter((x) => !fds.includes(x))
    t.deepEqual(added, [], 'every fd the reactor opened is closed')
    await within(r.close(), 'close again')
    await within(lp.stopListening(), 'stopListening after close resolves')
    for (const call of [
      () => r.adoptStreamPort(lfd, AddressFamily.INET, new RecFactory()),
      () => r.adoptStreamConnection(pairs[0].fd, AddressFamily.INET, new RecFactory()),
      () => r.adoptDatagramPort(ufd, AddressFamily.INET, new DgramRec()),
    ]) {
      t.throws(call, { code: 'ERR_REACTOR_CLOSED' })
    }
    for (const p of pairs) {
      p.cleanup()
      closeFd(p.fd)
    }
    t.true(conns.every((c) => c.lostReasons.length === 1), 'connectionLost exactly once')
  })

  test.serial(`${tag} a successful adoption then stop and close leaves no fd behind (50 cycles)`, async (t) => {
    const fds = fdList()
    const tasks = taskCount()
    const r = new Reactor({ thread: mode.thread })
    for (let i = 0; i < 50; i++) {
      const fd = listenTcp4()
      const lp = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
      closeFd(fd)
      await within(lp.stopListening(), 'stop')
      const ufd = bindUdp4()
      const dp = r.adoptDatagramPort(ufd, AddressFamily.INET, new DgramRec())
      closeFd(ufd)
      await within(dp.stopListening(), 'stop')
    }
    await within(r.close(), 'close')
    t.deepEqual(fdList(), fds)
    t.is(taskCount(), tasks)
  })

  test.serial(`${tag} close() called from inside dataReceived: no deadlock, connectionLost(ConnectionAborted) not re-entrant`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    const x = await adoptablePair('v4')
    let closeP: Promise<void> | undefined
    let inClose = false
    let lostInClose: boolean | undefined
    class P extends Rec {
      dataReceived(d: Buffer) {
        super.dataReceived(d)
        inClose = true
        closeP = r.close()
        inClose = false
      }
      connectionLost(reason: any) {
        lostInClose = inClose
        super.connectionLost(reason)
      }
    }
    const p = r.adoptStreamConnection(x.fd, x.family, new RecFactory(P))
    x.peer.sock.write('close now')
    await waitUntil(() => closeP !== undefined, 'dataReceived')
    await within(closeP!, 'close() from a callback')
    t.false(lostInClose, 'connectionLost not called from inside close()')
    t.is(p.lostReasons.length, 1)
    t.true(p.reason instanceof ConnectionAborted)
    x.cleanup()
    closeFd(x.fd)
  })

  test.serial(`${tag} stopListening from inside buildProtocol and connectionMade of the same port`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    extra.push(r)
    const fd = listenTcp4()
    let stopP: Promise<void> | undefined
    let lp: any
    class P extends Rec {
      connectionMade() {
        super.connectionMade()
        stopP = lp.stopListening()
        this.t.write('made')
      }
    }
    const f = new RecFactory(P)
    lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const c = await nodeClient(portOf(fd))
    await c.waitText('made')
    await within(stopP!, 'stopListening from connectionMade')
    t.is(f.doStops, 1)
    c.sock.write('still open')
    await f.built[0].waitText('still open')
    c.destroy()
    await within(f.built[0].waitLost(), 'lost')
    // and from inside buildProtocol
    const fd2 = listenTcp4()
    let stop2: Promise<void> | undefined
    const lp2 = r.adoptStreamPort(fd2, AddressFamily.INET, {
      buildProtocol() {
        stop2 = lp2.stopListening()
        return new EchoRec()
      },
    })
    const c2 = await nodeClient(portOf(fd2))
    c2.sock.write('echo')
    await c2.waitText('echo')
    await within(stop2!, 'stopListening from buildProtocol')
    c2.destroy()
  })

  test.serial(`${tag} close() while a stopListening is pending: both resolve`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    const f = new RecFactory()
    const lp = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, f)
    const s = lp.stopListening()
    await within(Promise.all([s, r.close()]), 'both')
    t.is(f.doStops, 1)
    t.is(f.stops, 1)
  })

  test.serial(`${tag} a failed adoption on a used reactor opens nothing either`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    extra.push(r)
    const lp = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, new RecFactory())
    const client = listenTcp4()
    const fds = fdList()
    const tasks = taskCount()
    t.throws(() => r.adoptStreamConnection(client, AddressFamily.INET, new RecFactory()), { code: 'ENOTCONN' })
    t.throws(() => r.adoptDatagramPort(client, AddressFamily.INET, new DgramRec()))
    t.deepEqual(fdList(), fds)
    t.is(taskCount(), tasks)
    await within(lp.stopListening(), 'stop')
  })
}
