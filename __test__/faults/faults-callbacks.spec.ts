// Faults: callbacks that misbehave (what callbacks-throw.spec.ts does not cover already).
//  - throwing from the remaining callbacks: writeConnectionLost, a producer's pause/resume/stop,
//    startFactory (inside adoptStreamPort), stopFactory / stopProtocol (after stopListening),
//    connectionRefused, onError itself, and throwing values that are not Errors;
//  - calling stopListening, loseConnection, abortConnection, reactor.close(), or adopting another fd
//    from inside callbacks;
//  - writing after the close.
// Each time: the documented outcome, no crash, connectionLost exactly once and never re-entrantly
// (from inside any callback or any call into the reactor), and no fd left once the reactor closed.
// Both reactor modes. Serial: compares /proc/self/fd.
import test from 'ava'
import * as dgram from 'node:dgram'
import {
  Reactor,
  AddressFamily,
  ServerFactory,
  ConnectionDone,
  ConnectionAborted,
  sockets,
} from 'reactor-socket'
import {
  MODES,
  adoptablePair,
  listenTcp4,
  bindUdp4,
  nodeClient,
  rawClient,
  closeFd,
  within,
  waitUntil,
  fdList,
  linkOf,
  fdsWithLink,
  track,
  udpPeer,
  fixture,
  child,
  reactorHarness,
  Rec,
  DgramRec,
  plainRecFactory,
  exactlyOnce,
  inCall,
  callDepth,
  settleFds,
  className,
  quietPeriod,
  sendUntil,
  fileTeardown,
} from '../helpers.js'

fileTeardown({ warmThreadPool: true })

class Boom extends Error {}

/** An adopted TCP listening port and a way to connect Node clients to it. */
function port(t: any, r: Reactor, factory: any) {
  const fd = listenTcp4()
  const lp = r.adoptStreamPort(fd, AddressFamily.INET, factory)
  closeFd(fd)
  const n = (lp.getHost() as any).port as number
  return {
    lp,
    n,
    async client() {
      const c = await nodeClient(n)
      t.teardown(() => c.destroy())
      return c
    },
  }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  // ---------------------------------------------------------------- throwing, the remaining callbacks

  test.serial(`${tag} writeConnectionLost throwing: reported, the connection aborted with it, connectionLost once`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('unix', { allowHalfOpen: true })
    t.teardown(x.cleanup)
    const boom = new Boom('writeConnectionLost')
    const f = plainRecFactory((p) => {
      ;(p as any).writeConnectionLost = () => {
        throw boom
      }
    })
    h.r.adoptStreamConnection(x.fd, x.family, f)
    closeFd(x.fd)
    const p = f.built[0]
    inCall(() => p.t.loseWriteConnection())
    t.is(await within(p.waitLost(), 'connectionLost'), boom)
    await exactlyOnce(t, p)
    await x.peer.waitEnd()
    x.cleanup()
    await h.finish([boom])
  })

  for (const which of ['pauseProducing', 'resumeProducing', 'stopProducing'] as const) {
    test.serial(`${tag} a producer whose ${which} throws: reported, no crash, connectionLost once`, async (t) => {
      const h = reactorHarness(t, mode)
      const x = await adoptablePair('unix')
      t.teardown(x.cleanup)
      const boom = new Boom(which)
      const calls: string[] = []
      const producer = {
        pauseProducing() {
          calls.push('pause')
          if (which === 'pauseProducing') throw boom
        },
        resumeProducing() {
          calls.push('resume')
          if (which === 'resumeProducing') throw boom
        },
        stopProducing() {
          calls.push('stop')
          if (which === 'stopProducing') throw boom
        },
      }
      const f = plainRecFactory()
      h.r.adoptStreamConnection(x.fd, x.family, f)
      closeFd(x.fd)
      const p = f.built[0]
      x.peer.sock.pause() // the buffer fills, so a streaming producer is paused and later resumed
      inCall(() => p.t.registerProducer(producer, true))
      let threw: unknown
      try {
        inCall(() => p.t.write(Buffer.alloc(1024 * 1024)))
      } catch (e) {
        threw = e
      }
      if (which === 'pauseProducing') {
        // thrown inside write(): it may propagate to the writer or be reported; either way no crash
        t.true(threw === undefined || threw === boom)
      } else t.is(threw, undefined)
      t.true(calls.includes('pause'))
      x.peer.sock.resume()
      if (which === 'stopProducing') {
        await waitUntil(() => calls.includes('resume'), 'resumeProducing after the drain')
        inCall(() => p.t.abortConnection())
        t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionAborted)
        await waitUntil(() => h.reported.includes(boom), 'reported')
      } else if (which === 'resumeProducing') {
        // thrown from a reactor callback: the connection is aborted with it
        t.is(await within(p.waitLost(), 'lost'), boom)
      } else {
        await waitUntil(() => calls.includes('resume') || p.lostReasons.length > 0, 'resumed or lost')
        inCall(() => p.t.abortConnection())
        await within(p.waitLost(), 'lost')
      }
      await exactlyOnce(t, p)
      await h.finish(threw === boom ? h.reported.filter((e) => e !== boom) : [boom])
    })
  }

  test.serial(`${tag} startFactory throwing inside adoptStreamPort: propagates, nothing adopted, no doStop; the fd is fine`, async (t) => {
    const h = reactorHarness(t, mode)
    const fd = listenTcp4()
    const link = linkOf(fd)
    const boom = new Boom('startFactory')
    let stops = 0
    class F extends ServerFactory {
      startFactory() {
        throw boom
      }
      stopFactory() {
        stops++
      }
    }
    const err = t.throws(() => h.r.adoptStreamPort(fd, AddressFamily.INET, new F()))
    t.is(err, boom)
    t.deepEqual(fdsWithLink(link), [fd], 'the duplicate was closed before the throw')
    t.true(sockets.info(fd).listening, "the caller's fd still listens")
    await quietPeriod(30, 'a stopFactory for the factory that failed to start')
    t.is(stops, 0)
    // the same fd adopts fine afterwards
    const ok = h.r.adoptStreamPort(fd, AddressFamily.INET, plainRecFactory())
    await within(ok.stopListening(), 'stop')
    closeFd(fd)
    await h.finish()
  })

  test.serial(`${tag} stopFactory and stopProtocol throwing: reported; stopListening still resolves; every call resolves`, async (t) => {
    const h = reactorHarness(t, mode)
    const b1 = new Boom('stopFactory')
    const b2 = new Boom('stopProtocol')
    class F extends ServerFactory {
      stopFactory() {
        throw b1
      }
    }
    const { lp } = port(t, h.r, new F())
    class D extends DgramRec {
      stopProtocol() {
        super.stopProtocol()
        throw b2
      }
    }
    const ufd = bindUdp4()
    const d = new D()
    const dp = h.r.adoptDatagramPort(ufd, AddressFamily.INET, d)
    closeFd(ufd)
    await within(Promise.all([lp.stopListening(), dp.stopListening()]), 'stopListening')
    await within(Promise.all([lp.stopListening(), dp.stopListening()]), 'second stopListening')
    t.deepEqual(d.stopDepths, [0])
    await h.finish([b1, b2])
  })

  test.serial(`${tag} connectionRefused throwing (connected UDP): reported, the port keeps working`, async (t) => {
    const h = reactorHarness(t, mode)
    const boom = new Boom('connectionRefused')
    // a UDP port number that nobody listens on
    const dead = bindUdp4()
    const deadPort = (sockets.info(dead).local as any).port
    closeFd(dead)
    let refused = 0
    const d = new DgramRec()
    ;(d as any).connectionRefused = () => {
      refused++
      throw boom
    }
    const ufd = bindUdp4()
    const dp = h.r.adoptDatagramPort(ufd, AddressFamily.INET, d)
    closeFd(ufd)
    dp.connect('127.0.0.1', deadPort)
    const ask = () => {
      try {
        inCall(() => dp.write('anyone?'))
      } catch (e) {
        t.fail(`write threw ${e}`)
      }
    }
    await sendUntil(ask, () => refused > 0, 'connectionRefused', 10000, 20)
    await waitUntil(() => h.reported.includes(boom), 'reported')
    inCall(() => dp.write('still usable'))
    await within(dp.stopListening(), 'stop')
    await h.finish(h.reported.filter((e) => e === boom))
  })

  test.serial(`${tag} onError that throws, and callbacks that throw non-Errors: no crash, connectionLost gets an Error once`, async (t) => {
    const before = fdList()
    const seen: unknown[] = []
    const r = new Reactor({
      thread: mode.thread,
      onError: (e) => {
        seen.push(e)
        throw new Error('onError itself throws')
      },
    })
    t.teardown(() => r.close())
    const values: unknown[] = ['a string', undefined, null, 42, { not: 'an error' }, { toString: {} }, Symbol('thrown')]
    const f = plainRecFactory((p) => {
      p.onData = (_p, d) => {
        throw values[Number(d.toString())]
      }
    })
    const { n } = port(t, r, f)
    const origError = console.error
    const stderr: unknown[][] = []
    console.error = (...args: unknown[]) => void stderr.push(args)
    try {
      for (let i = 0; i < values.length; i++) {
        const c = await nodeClient(n)
        t.teardown(() => c.destroy())
        await waitUntil(() => f.built.length === i + 1, 'built')
        c.sock.write(String(i))
        const reason = await within(f.built[i].waitLost(), 'lost')
        t.true(reason instanceof Error, `connectionLost got an Error for values[${i}]: ${className(reason)}`)
        await exactlyOnce(t, f.built[i])
        await c.waitClose()
      }
    } finally {
      console.error = origError
    }
    t.deepEqual(seen, values, 'onError got each thrown value as thrown')
    t.true(stderr.length >= values.length, 'the failing onError fell back to stderr')
    await within(r.close(), 'close')
    t.deepEqual(await settleFds(before), [])
  })

  // ---------------------------------------------------------------- calls from inside callbacks

  test.serial(`${tag} stopListening inside buildProtocol and inside connectionMade: the connection is served, doStop later, no more accepts`, async (t) => {
    const h = reactorHarness(t, mode)
    let doStopDepth = -1
    let stopped: Promise<void> | undefined
    let lp: any
    const built: Rec[] = []
    const factory = {
      buildProtocol() {
        const p = new Rec()
        p.onData = (q, d) => q.t.write(d)
        built.push(p)
        if (built.length === 1) stopped = inCall(() => lp.stopListening())
        return p
      },
      doStop() {
        doStopDepth = callDepth()
      },
    }
    const P = port(t, h.r, factory)
    lp = P.lp
    const c = await P.client()
    await waitUntil(() => built.length === 1, 'built')
    await within(stopped!, 'stopListening resolves')
    t.is(doStopDepth, 0, 'doStop ran, and not inside buildProtocol or stopListening')
    c.sock.write('still served')
    await c.waitText('still served')
    // no more accepts (the caller's fd was closed, so the port number refuses now)
    const refused = await nodeClient(P.n).then(
      () => false,
      () => true,
    )
    t.true(refused, 'the stopped port accepts nothing')
    c.sock.end()
    await within(built[0].waitLost(), 'lost')
    await exactlyOnce(t, built[0])
    await within(lp.stopListening(), 'a later stopListening resolves too')

    // from inside connectionMade of an accepted connection
    const f2 = plainRecFactory((p) => {
      p.onMade = () => {
        stopped = lp2.stopListening()
        p.t.write('hi')
      }
    })
    const P2 = port(t, h.r, f2)
    const lp2 = P2.lp
    const c2 = await P2.client()
    await c2.waitText('hi')
    await within(stopped!, 'stopListening from connectionMade')
    c2.destroy()
    await within(f2.built[0].waitLost(), 'lost')
    await exactlyOnce(t, f2.built[0])
    await h.finish()
  })

  test.serial(`${tag} stopListening inside datagramReceived: no datagram after it, stopProtocol later and once, never re-entrant`, async (t) => {
    const h = reactorHarness(t, mode)
    const ufd = bindUdp4()
    const d = new DgramRec()
    let stopped: Promise<void> | undefined
    let after = 0
    d.onDatagram = (p) => {
      if (stopped) after++
      else stopped = p.t.stopListening()
    }
    const dp = h.r.adoptDatagramPort(ufd, AddressFamily.INET, d)
    const portNumber = dp.getHost().port
    closeFd(ufd)
    const peer = await udpPeer()
    t.teardown(() => peer.close())
    for (let i = 0; i < 50; i++) peer.sock.send(`d${i}`, portNumber, '127.0.0.1')
    await waitUntil(() => stopped !== undefined, 'first datagram')
    await within(stopped!, 'stopListening')
    t.deepEqual(d.stopDepths, [0], 'stopProtocol once, not inside datagramReceived or stopListening')
    await quietPeriod(50, 'a datagram delivered after stopListening')
    t.is(after, 0, 'nothing delivered after stopListening')
    t.is(d.t, null, 'transport cleared after stopProtocol')
    await within(dp.stopListening(), 'second stopListening')
    t.is(d.stops, 1)
    peer.close()
    await h.finish()
  })

  test.serial(`${tag} loseConnection inside connectionMade, abortConnection inside dataReceived, both inside connectionLost: once each, never re-entrant`, async (t) => {
    const h = reactorHarness(t, mode)
    const f = plainRecFactory((p) => {
      p.onMade = () => {
        if (f.built.length === 1) {
          p.t.write('bye')
          p.t.loseConnection()
          t.true(p.t.disconnecting)
          t.is(p.lostReasons.length, 0, 'not lost inside connectionMade')
        }
      }
      p.onData = (q) => {
        q.t.abortConnection()
        t.is(q.lostReasons.length, 0, 'not lost inside dataReceived')
        q.t.write('dropped')
      }
      p.onLost = (q) => {
        q.t.loseConnection()
        q.t.abortConnection()
        q.t.write('dropped too')
        q.t.writeSequence(['and', 'these'])
        q.t.pauseProducing()
        q.t.resumeProducing()
      }
    })
    const P = port(t, h.r, f)
    const c1 = await P.client()
    await c1.waitEnd()
    t.is(c1.text, 'bye')
    await waitUntil(() => f.built[0].lostReasons.length > 0, 'lost 1')
    t.true(f.built[0].reason instanceof ConnectionDone, className(f.built[0].reason))
    await exactlyOnce(t, f.built[0])

    const c2 = rawClient(P.n)
    t.teardown(() => c2.destroy())
    await waitUntil(() => f.built.length === 2, 'built 2')
    c2.sock.write('x'.repeat(1000))
    c2.sock.write('y'.repeat(1000))
    await waitUntil(() => f.built[1].lostReasons.length > 0, 'lost 2')
    t.true(f.built[1].reason instanceof ConnectionAborted, className(f.built[1].reason))
    await exactlyOnce(t, f.built[1])
    await c2.waitClose()
    t.false(c2.text.includes('dropped'), 'nothing written after the abort was sent')
    await h.finish()
  })

  test.serial(`${tag} reactor.close() from inside dataReceived: every connection lost once (ConnectionAborted), adopt afterwards throws ERR_REACTOR_CLOSED`, async (t) => {
    const h = reactorHarness(t, mode)
    let closing: Promise<void> | undefined
    let adoptAfter: any
    const f = plainRecFactory((p) => {
      p.onData = () => {
        if (closing) return
        closing = h.r.close()
        const lfd = listenTcp4()
        try {
          h.r.adoptStreamPort(lfd, AddressFamily.INET, plainRecFactory())
        } catch (e) {
          adoptAfter = e
        }
        closeFd(lfd)
        t.is(p.lostReasons.length, 0, 'not lost inside the close() call')
      }
    })
    const P = port(t, h.r, f)
    const clients = [await P.client(), await P.client(), await P.client()]
    await waitUntil(() => f.built.length === 3, 'built')
    clients[1].sock.write('close it all')
    await within(waitUntil(() => closing !== undefined, 'close called'), 'close')
    await within(closing!, 'close resolves')
    t.is(adoptAfter?.code, 'ERR_REACTOR_CLOSED')
    for (const p of f.built) {
      t.true(p.reason instanceof ConnectionAborted, className(p.reason))
      await exactlyOnce(t, p, 10)
    }
    await Promise.all(clients.map((c) => c.waitClose()))
    await h.finish()
  })

  test.serial(`${tag} adopting other fds from inside callbacks (buildProtocol, connectionMade, dataReceived, datagramReceived, connectionLost) works`, async (t) => {
    const h = reactorHarness(t, mode)
    const adopted: Rec[] = []
    const peers: number[] = []
    const dports: any[] = []
    const adoptPair = () => {
      const [a, b] = sockets.socketPair()
      track(a)
      peers.push(track(b))
      const f = plainRecFactory((p) => {
        p.onData = (q, d) => q.t.write(d)
      })
      const p = h.r.adoptStreamConnection(a, AddressFamily.UNIX, f)
      closeFd(a)
      adopted.push(p as Rec)
    }
    const f = plainRecFactory((p) => {
      p.onMade = () => adoptPair()
      p.onData = () => adoptPair()
      p.onLost = () => adoptPair()
    })
    const factory = {
      buildProtocol(addr: any) {
        adoptPair()
        return f.buildProtocol(addr)
      },
    }
    const P = port(t, h.r, factory)
    const c = await P.client()
    await waitUntil(() => f.built.length === 1, 'built')
    c.sock.write('x')
    await waitUntil(() => adopted.length === 3, 'adopted inside buildProtocol, connectionMade, dataReceived')
    c.sock.end()
    await waitUntil(() => adopted.length === 4, 'adopted inside connectionLost')
    await exactlyOnce(t, f.built[0])
    // a stream port adopted inside datagramReceived
    const d = new DgramRec()
    d.onDatagram = () => {
      const lfd = listenTcp4()
      dports.push(h.r.adoptStreamPort(lfd, AddressFamily.INET, plainRecFactory((p) => (p.onMade = () => p.t.write('from a port adopted in datagramReceived')))))
      closeFd(lfd)
    }
    const ufd = bindUdp4()
    const dp = h.r.adoptDatagramPort(ufd, AddressFamily.INET, d)
    closeFd(ufd)
    const u = dgram.createSocket('udp4')
    t.teardown(() => {
      try {
        u.close()
      } catch {}
    })
    u.send('adopt', dp.getHost().port, '127.0.0.1')
    await waitUntil(() => dports.length === 1, 'adopted inside datagramReceived')
    const c2 = await nodeClient((dports[0].getHost() as any).port)
    t.teardown(() => c2.destroy())
    await c2.waitText('from a port adopted in datagramReceived')
    // every connection adopted inside a callback works
    const net = await import('node:net')
    for (const [i, fd] of peers.entries()) {
      const s = new net.Socket({ fd, readable: true, writable: true })
      const got = new Promise<string>((res) => s.once('data', (b) => res(b.toString())))
      s.write(`echo ${i}`)
      t.is(await within(got, `echo ${i}`), `echo ${i}`)
      s.destroy()
    }
    peers.length = 0
    await waitUntil(() => adopted.every((p) => p.lostReasons.length === 1), 'all adopted lost')
    for (const p of adopted) await exactlyOnce(t, p, 0)
    c2.destroy()
    u.close()
    await h.finish()
  })

  // ---------------------------------------------------------------- writing after the close

  test.serial(`${tag} writes after the close are dropped silently (stream); a stopped datagram port throws EBADF`, async (t) => {
    const h = reactorHarness(t, mode)
    const x = await adoptablePair('v4')
    t.teardown(x.cleanup)
    const f = plainRecFactory()
    h.r.adoptStreamConnection(x.fd, x.family, f)
    closeFd(x.fd)
    const p = f.built[0]
    x.peer.sock.end()
    await within(p.waitLost(), 'lost')
    t.notThrows(() => inCall(() => p.t.write('late')))
    t.notThrows(() => inCall(() => p.t.writeSequence(['late', Buffer.from('r')])))
    t.notThrows(() => inCall(() => p.t.loseConnection()))
    t.notThrows(() => inCall(() => p.t.abortConnection()))
    t.notThrows(() => inCall(() => p.t.loseWriteConnection()))
    t.notThrows(() => inCall(() => p.t.pauseProducing()))
    t.notThrows(() => inCall(() => p.t.resumeProducing()))
    t.notThrows(() => inCall(() => p.t.stopProducing()))
    t.is(p.t.bufferSize, 0)
    t.false(p.t.connected)
    // still a type error for a wrong type, even after the close
    t.throws(() => p.t.write(42 as any), { instanceOf: TypeError })
    // a producer registered after the loss is stopped at once
    let stoppedProducer = 0
    p.t.registerProducer({ pauseProducing() {}, resumeProducing() {}, stopProducing: () => stoppedProducer++ }, true)
    t.is(stoppedProducer, 1)
    await exactlyOnce(t, p)
    x.cleanup()

    const ufd = bindUdp4()
    const d = new DgramRec()
    const dp = h.r.adoptDatagramPort(ufd, AddressFamily.INET, d)
    closeFd(ufd)
    await dp.stopListening()
    const e = t.throws(() => dp.write('late', ['127.0.0.1', 9]))
    t.is((e as any)?.code, 'EBADF')
    t.throws(() => dp.connect('127.0.0.1', 9), { code: 'EBADF' } as any)
    t.is(dp.getHost().port > 0, true, 'getHost still answers')
    await h.finish()
  })

  test.serial(`${tag} process.exit() inside dataReceived, connectionLost and a stopListening callback: that exit code, no crash`, async (t) => {
    for (const where of ['dataReceived', 'connectionLost', 'stopListening'] as const) {
      const c = child(fixture('faults-exit.mjs'), [where, mode.name])
      t.teardown(() => c.kill())
      const portNumber = Number(await c.line('PORT '))
      const peer = await nodeClient(portNumber).catch(() => null)
      if (peer) {
        peer.sock.write('x')
        peer.sock.end()
      }
      const res = await c.wait()
      peer?.destroy()
      t.is(res.signal, null, `${where}: ${res.stderr}`)
      t.is(res.code, 23, `${where}: ${res.stderr}`)
    }
  })
}
