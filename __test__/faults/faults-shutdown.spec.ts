// Faults: shutdown paths (what lifetime.spec.ts and workers.spec.ts do not cover already).
//  - the process ending with live, busy connections and ports: by itself with everything unref'd
//    while data flows, process.exit from a SIGTERM handler, process.exit on the main thread while a
//    worker's reactor is busy, an uncaught exception outside the reactor: the expected exit code,
//    never a signal or an abort;
//  - reactor.close() in the middle of traffic (TCP echo floods, a UDP flood, a paused connection, a
//    connection with a large queued write): every connection lost exactly once (ConnectionAborted),
//    every port stopped once, nothing reported, no fd left;
//  - 50 worker_threads in a row that adopt, serve and end (closing their reactor, process.exit()
//    inside a callback, or terminate() while live): no fd or thread left in the main thread, exit 0.
// process.exit() from inside callbacks: faults-callbacks.spec.ts and lifetime.spec.ts. Both modes.
import test from 'ava'
import * as net from 'node:net'
import * as dgram from 'node:dgram'
import { Reactor, AddressFamily, ServerFactory, ConnectionAborted, sockets } from 'reactor-socket'
import {
  MODES,
  adoptablePair,
  listenTcp4,
  bindUdp4,
  closeFd,
  within,
  waitUntil,
  fixture,
  child,
  fdList,
  track,
  limiter,
  Rec,
  DgramRec,
  exactlyOnce,
  inCall,
  settleFds,
  className,
  plainRecFactory,
  quietPeriod,
  fileTeardown,
} from '../helpers.js'

const slot = limiter(2)
fileTeardown({ warmThreadPool: true })

const FATAL = /FATAL|Abort|abort\(\)|panicked|Segmentation|core dumped|Assertion/

/** Pumps data into a TCP port and datagrams into a UDP port until stopped. */
function pumpInto(tcp: number, udp: number, n = 4) {
  const socks: net.Socket[] = []
  const chunk = Buffer.alloc(64 * 1024, 3)
  for (let i = 0; i < n; i++) {
    const s = net.connect(tcp, '127.0.0.1')
    s.on('error', () => {})
    s.on('data', () => {})
    const pump = () => {
      while (!s.destroyed && s.write(chunk)) {}
    }
    s.on('connect', pump)
    s.on('drain', pump)
    socks.push(s)
  }
  const u = dgram.createSocket('udp4')
  u.on('error', () => {})
  const timer = setInterval(() => {
    for (let i = 0; i < 20; i++) u.send('y'.repeat(100), udp, '127.0.0.1')
  }, 2)
  return () => {
    clearInterval(timer)
    socks.forEach((s) => s.destroy())
    try {
      u.close()
    } catch {}
  }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test(`${tag} the process ends by itself with every handle unref'd while data flows: exit 0, no abort`, (t) =>
    slot(async () => {
      const c = child(fixture('faults-shutdown.mjs'), ['natural', mode.name])
      const [tcp, udp] = (await c.line('PORTS ')).split(' ').map(Number)
      const stop = pumpInto(tcp, udp)
      t.teardown(stop)
      const res = await c.wait(15000)
      stop()
      t.is(res.signal, null, res.stderr)
      t.is(res.code, 0, res.stderr)
      t.regex(res.stdout, /ENDING/)
      t.notRegex(res.stderr, FATAL)
    }))

  test(`${tag} process.exit(0) from a SIGTERM handler while busy: exit 0, no abort`, (t) =>
    slot(async () => {
      const c = child(fixture('faults-shutdown.mjs'), ['sigterm', mode.name])
      await c.line('READY')
      c.proc.kill('SIGTERM')
      const res = await c.wait(15000)
      t.is(res.signal, null, res.stderr)
      t.is(res.code, 0, res.stderr)
      t.notRegex(res.stderr, FATAL)
    }))

  test(`${tag} process.exit(0) on the main thread while a worker's reactor is busy: exit 0, no abort`, (t) =>
    slot(async () => {
      const c = child(fixture('faults-shutdown.mjs'), ['worker', mode.name])
      const res = await c.wait(15000)
      t.is(res.signal, null, res.stderr)
      t.is(res.code, 0, res.stderr)
      t.notRegex(res.stderr, FATAL)
    }))

  test(`${tag} an uncaught exception outside the reactor while busy: Node's exit code 1, no abort`, (t) =>
    slot(async () => {
      const c = child(fixture('faults-shutdown.mjs'), ['uncaught', mode.name])
      const res = await c.wait(15000)
      t.is(res.signal, null, res.stderr)
      t.is(res.code, 1, res.stderr)
      t.regex(res.stderr, /uncaught-outside-the-reactor/)
      t.notRegex(res.stderr, FATAL)
    }))

  test(`${tag} 50 worker_threads in a row adopt, serve and end (close, process.exit, terminate): nothing left, exit 0`, (t) =>
    slot(async () => {
      const c = child(fixture('faults-workers-main.mjs'), [mode.name, '50'])
      const res = await c.wait(55000)
      t.is(res.signal, null, res.stderr)
      t.is(res.code, 0, res.stdout + res.stderr)
      t.notRegex(res.stdout, /TIMEOUT/)
      const r = JSON.parse(/^RESULT (.*)$/m.exec(res.stdout)![1])
      t.log(JSON.stringify(r))
      t.deepEqual(r.codes, { 'close:0': 17, 'exit:0': 17, 'live:1': 16 })
      t.is(r.fds1, r.fds0, 'no fd left in the process by 50 workers')
      t.is(r.tasks1, r.tasks0, 'no thread left')
      t.notRegex(res.stderr, FATAL)
    }))

  test.serial(`${tag} reactor.close() in the middle of traffic: every connection lost once (ConnectionAborted), ports stopped once, no fd left`, async (t) => {
    const before = fdList()
    const reported: unknown[] = []
    const r = new Reactor({ thread: mode.thread, onError: (e) => reported.push(e) })
    t.teardown(() => r.close())
    const built: Rec[] = []
    let stopFactory = 0
    class F extends ServerFactory {
      buildProtocol() {
        const p = new Rec()
        p.keepChunks = false
        p.onData = (q, d) => q.t.write(d)
        built.push(p)
        return p as any
      }
      stopFactory() {
        stopFactory++
      }
    }
    const lfd = listenTcp4()
    const lp = r.adoptStreamPort(lfd, AddressFamily.INET, new F())
    closeFd(lfd)
    const ufd = bindUdp4()
    const d = new DgramRec()
    const dp = r.adoptDatagramPort(ufd, AddressFamily.INET, d)
    closeFd(ufd)
    // a paused connection that keeps receiving, and one with a large queued write
    const x1 = await adoptablePair('v4')
    t.teardown(x1.cleanup)
    const pausedF = plainRecFactory()
    r.adoptStreamConnection(x1.fd, x1.family, pausedF)
    closeFd(x1.fd)
    inCall(() => pausedF.built[0].t.pauseProducing())
    const flood = setInterval(() => x1.peer.sock.write(Buffer.alloc(16 * 1024)), 1)
    t.teardown(() => clearInterval(flood))
    const [mine, theirs] = sockets.socketPair()
    track(mine)
    track(theirs)
    const queuedF = plainRecFactory()
    r.adoptStreamConnection(mine, AddressFamily.UNIX, queuedF)
    closeFd(mine)
    inCall(() => queuedF.built[0].t.write(Buffer.alloc(8 * 1024 * 1024)))

    const stop = pumpInto((lp.getHost() as any).port, dp.getHost().port, 8)
    t.teardown(stop)
    await waitUntil(() => built.length === 8 && built.every((p) => p.bytes > 0) && d.got.length > 0, 'traffic everywhere', 10000)
    // close while it flows: every connection and the port received more since
    const marks = built.map((p) => p.bytes)
    const datagrams = d.got.length
    await waitUntil(() => built.every((p, i) => p.bytes > marks[i]) && d.got.length > datagrams, 'more traffic everywhere', 10000)
    await within(r.close(), 'close during traffic')
    clearInterval(flood)
    const all = [...built, pausedF.built[0], queuedF.built[0]]
    for (const p of all) t.true(p.reason instanceof ConnectionAborted, className(p.reason))
    for (const p of all) await exactlyOnce(t, p, 0)
    await quietPeriod(100, 'a second stopFactory or stopProtocol')
    t.is(stopFactory, 1, 'stopFactory once')
    t.deepEqual(d.stopDepths, [0], 'stopProtocol once, not re-entrant')
    t.deepEqual(reported, [])
    t.is(
      (() => {
        try {
          r.adoptStreamConnection(theirs, AddressFamily.UNIX, queuedF)
        } catch (e: any) {
          return e.code
        }
      })(),
      'ERR_REACTOR_CLOSED',
    )
    stop()
    x1.cleanup()
    closeFd(theirs)
    t.deepEqual(await settleFds(before, 3000), [], 'no fd left behind')
  })
}
