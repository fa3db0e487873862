// docs/adopting.md "adoptStreamConnection": adoptStreamConnection, the protocol's lifecycle, the reasons given to
// connectionLost, abort and close semantics towards the peer. Both reactor modes.
import test from 'ava'
import * as fs from 'node:fs'
import {
  Reactor,
  AddressFamily,
  ConnectionClosed,
  ConnectionDone,
  ConnectionLost,
  ConnectionAborted,
  IPv4Address,
  IPv6Address,
  UNIXAddress,
  sockets,
} from 'reactor-socket'
import {
  MODES,
  PAIR_KINDS,
  Rec,
  EchoRec,
  RecFactory,
  adoptablePair,
  closeFd,
  fileTeardown,
  within,
  waitUntil,
  linkOf,
  fdsWithLink,
  soError,
  listenTcp4,
  portOf,
  track,
  isCloexec,
  HAS_PYTHON,
  testIf,
  quietPeriod,
} from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

async function pair(kind: (typeof PAIR_KINDS)[number], opts: { allowHalfOpen?: boolean } = {}) {
  const p = await adoptablePair(kind, opts)
  cleanups.push(p.cleanup)
  return p
}

/** Reads from a raw non-blocking fd until `n` bytes arrived (bounded). */
async function readRaw(fd: number, n: number): Promise<string> {
  const buf = Buffer.alloc(65536)
  let got = ''
  await waitUntil(() => {
    try {
      const k = fs.readSync(fd, buf, 0, buf.length, null)
      got += buf.subarray(0, k).toString()
    } catch (e: any) {
      if (e.code !== 'EAGAIN') throw e
    }
    return got.length >= n
  }, `raw read of ${n} bytes`)
  return got
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const kind of PAIR_KINDS) {
    test(`${tag} ${kind}: buildProtocol(peer) and connectionMade run inside the call, which returns the protocol; no doStart/doStop`, async (t) => {
      const { fd, family, peer, serverPort } = await pair(kind)
      let inCall = false
      let madeInsideCall: boolean | undefined
      let transportAtMade: any
      class P extends EchoRec {
        connectionMade() {
          super.connectionMade()
          madeInsideCall = inCall
          transportAtMade = (this as any).transport
        }
      }
      const f = new RecFactory(P)
      inCall = true
      const ret = r.adoptStreamConnection(fd, family, f)
      inCall = false
      t.true(madeInsideCall, 'connectionMade ran synchronously inside adoptStreamConnection')
      t.truthy(transportAtMade, 'transport set before connectionMade')
      t.is(ret, f.built[0], 'returns the protocol')
      t.true(ret instanceof P)
      t.is(ret.madeCount, 1)
      t.is(ret.t, transportAtMade)
      t.true(ret.t.connected)
      const dups = fdsWithLink(linkOf(fd)).filter((x) => x !== fd)
      t.is(dups.length, 1, 'the reactor holds one duplicate')
      t.true(isCloexec(dups[0]), 'the duplicate is close-on-exec')
      t.true(sockets.info(fd).nonBlocking, "O_NONBLOCK is visible on the caller's fd")
      t.is(f.doStarts, 0)
      t.is(f.starts, 0)
      const addr = f.addrs[0]
      if (kind === 'v4') {
        t.true(addr instanceof IPv4Address)
        t.like(addr, { type: 'TCP', host: '127.0.0.1', port: serverPort })
      } else if (kind === 'v6') {
        t.true(addr instanceof IPv6Address)
        t.like(addr, { type: 'TCP', host: '::1', port: serverPort, flowInfo: 0, scopeID: 0 })
      } else {
        t.true(addr instanceof UNIXAddress)
        t.is(addr.name, null)
      }
      peer.sock.write('echo ' + kind)
      await peer.waitText('echo ' + kind)
      peer.sock.end()
      const reason = await within(ret.waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionDone)
      t.true(reason instanceof ConnectionClosed)
      t.false(reason instanceof ConnectionLost, 'an orderly close is not a ConnectionLost')
      t.false(ret.t.connected)
      await peer.waitClose()
      t.deepEqual(ret.log, ['made', 'data', 'lost'])
      t.is(f.doStops, 0)
      t.is(f.stops, 0)
      t.notThrows(() => fs.fstatSync(fd), "the caller's fd is still open")
      closeFd(fd)
    })

    test(`${tag} ${kind}: buildProtocol declining → undefined; only the duplicate closed; the caller's fd keeps the connection, non-blocking`, async (t) => {
      const { fd, family, peer } = await pair(kind)
      const link = linkOf(fd)
      const before = sockets.info(fd)
      let asked = 0
      const ret = r.adoptStreamConnection(fd, family, {
        buildProtocol() {
          asked++
          return null
        },
      })
      t.is(ret, undefined)
      t.is(asked, 1)
      t.deepEqual(fdsWithLink(link), [fd], 'the duplicate is closed before the call returns')
      const after = sockets.info(fd)
      t.true(after.nonBlocking, 'the caller fd keeps O_NONBLOCK set during adoption')
      t.deepEqual(after.peer, before.peer)
      t.deepEqual(after.local, before.local)
      // the connection is intact through the caller's fd, both ways
      fs.writeSync(fd, 'via caller')
      await peer.waitText('via caller')
      peer.sock.write('to caller')
      t.is(await readRaw(fd, 9), 'to caller')
      t.false(peer.ended, 'the peer saw no EOF')
      closeFd(fd)
      await peer.waitEnd()
    })
  }

  test(`${tag} buildProtocol returning undefined declines too`, async (t) => {
    const { fd, family, peer } = await pair('v4')
    t.is(r.adoptStreamConnection(fd, family, { buildProtocol: () => undefined }), undefined)
    fs.writeSync(fd, 'still mine')
    await peer.waitText('still mine')
    closeFd(fd)
  })

  for (const kind of PAIR_KINDS) {
    test(`${tag} ${kind}: our loseConnection → peer gets all data then EOF; connectionLost(ConnectionDone) once, not re-entrantly`, async (t) => {
      const { fd, family, peer } = await pair(kind)
      let inside = false
      let lostInside: boolean | undefined
      class P extends Rec {
        dataReceived(d: Buffer) {
          super.dataReceived(d)
          this.t.write('reply:' + d.toString())
          inside = true
          this.t.loseConnection()
          t.true(this.t.disconnecting, 'disconnecting after loseConnection')
          this.t.loseConnection() // a second call is harmless
          inside = false
        }
        connectionLost(reason: any) {
          lostInside = inside
          super.connectionLost(reason)
        }
      }
      const p = r.adoptStreamConnection(fd, family, new RecFactory(P))
      t.false(p.t.disconnecting)
      peer.sock.write('bye')
      const reason = await within(p.waitLost(), 'connectionLost')
      t.false(lostInside, 'connectionLost not called from inside loseConnection')
      t.true(reason instanceof ConnectionDone)
      await peer.waitEnd()
      t.is(peer.text, 'reply:bye')
      t.false(p.t.connected)
      await quietPeriod(50, 'a second connectionLost')
      t.is(p.lostReasons.length, 1)
      // the caller still holds its fd: the peer saw EOF anyway (SHUT_RDWR before close)
      t.notThrows(() => fs.fstatSync(fd), "the caller's fd is still open")
      closeFd(fd)
    })
  }

  for (const kind of ['v4', 'unix'] as const) {
    test(`${tag} ${kind}: data (and EOF) that arrived before the adoption are delivered`, async (t) => {
      const a = await pair(kind)
      a.peer.sock.write('early bird')
      const b = await pair(kind)
      b.peer.sock.end('early and gone')
      await a.peer.waitDelivered() // the bytes (and the FIN) are at our sockets before the adoption
      await b.peer.waitDelivered()
      const pa = r.adoptStreamConnection(a.fd, a.family, new RecFactory(Rec))
      const pb = r.adoptStreamConnection(b.fd, b.family, new RecFactory(Rec))
      closeFd(a.fd)
      closeFd(b.fd)
      await pa.waitText('early bird')
      t.true((await within(pb.waitLost(), 'lost')) instanceof ConnectionDone)
      t.is(pb.text, 'early and gone')
      a.peer.sock.end()
      await within(pa.waitLost(), 'lost a')
    })
  }

  test(`${tag} peer EOF is delivered after all of the peer's data`, async (t) => {
    const { fd, family, peer } = await pair('v4')
    const p = r.adoptStreamConnection(fd, family, new RecFactory(Rec))
    closeFd(fd)
    peer.sock.write('a')
    peer.sock.write('b')
    peer.sock.end('c')
    const reason = await within(p.waitLost(), 'connectionLost')
    t.true(reason instanceof ConnectionDone)
    t.is(p.text, 'abc')
    t.is(p.log[0], 'made')
    t.is(p.log[p.log.length - 1], 'lost')
  })

  for (const kind of ['v4', 'v6'] as const) {
    test(`${tag} ${kind}: the peer resets before we read anything → ConnectionLost with code ECONNRESET`, async (t) => {
      const { fd, family, peer } = await pair(kind)
      const p = r.adoptStreamConnection(fd, family, new RecFactory(Rec))
      closeFd(fd)
      peer.sock.resetAndDestroy()
      const reason: any = await within(p.waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionLost, `got ${reason?.constructor?.name}: ${reason?.message}`)
      t.true(reason instanceof ConnectionClosed)
      t.false(reason instanceof ConnectionDone, 'a reset is never a ConnectionDone')
      t.false(reason instanceof ConnectionAborted, 'we did not abort')
      t.is(reason.code, 'ECONNRESET')
      t.is((reason as any).errno, -104, "errno is negative, as in Node (libuv)")
      t.is(p.lostReasons.length, 1)
    })
  }

  test(`${tag} a reset after some data was exchanged → ConnectionLost with code ECONNRESET, after the data`, async (t) => {
    const { fd, family, peer } = await pair('v4')
    const p = r.adoptStreamConnection(fd, family, new RecFactory(EchoRec))
    closeFd(fd)
    peer.sock.write('hello')
    await peer.waitText('hello')
    await p.waitText('hello')
    peer.sock.resetAndDestroy()
    const reason: any = await within(p.waitLost(), 'connectionLost')
    t.true(reason instanceof ConnectionLost, `got ${reason?.constructor?.name}`)
    t.false(reason instanceof ConnectionDone)
    t.is(reason.code, 'ECONNRESET')
    t.deepEqual(p.log, ['made', 'data', 'lost'])
  })

  for (const kind of PAIR_KINDS) {
    test(`${tag} ${kind}: abortConnection → ConnectionAborted, not re-entrantly; the peer sees a reset (or a close)`, async (t) => {
      const { fd, family, peer } = await pair(kind)
      let inside = false
      let lostInside: boolean | undefined
      class P extends Rec {
        connectionLost(reason: any) {
          lostInside = inside
          super.connectionLost(reason)
        }
      }
      const p = r.adoptStreamConnection(fd, family, new RecFactory(P))
      closeFd(fd) // the reactor's duplicate is now the last reference
      inside = true
      p.t.abortConnection()
      inside = false
      const reason = await within(p.waitLost(), 'connectionLost')
      t.false(lostInside, 'connectionLost not called from inside abortConnection')
      t.true(reason instanceof ConnectionAborted)
      t.true(reason instanceof ConnectionLost)
      t.true(reason instanceof ConnectionClosed)
      t.false(reason instanceof ConnectionDone)
      await peer.waitClose()
      // SHUT_RDWR sends a FIN before the SO_LINGER 0 close sends the reset: Node may report either
      t.true(peer.ended || peer.error?.code === 'ECONNRESET', `peer: ended=${peer.ended} error=${peer.error?.code}`)
      t.log(`peer saw: ${peer.error ? peer.error.code : 'EOF'}`)
      p.t.abortConnection() // harmless afterwards
      await quietPeriod(30, 'a second connectionLost')
      t.is(p.lostReasons.length, 1)
    })
  }

  test(`${tag} abortConnection while the caller still holds its fd: the peer still sees the connection end`, async (t) => {
    const { fd, family, peer } = await pair('v4')
    const p = r.adoptStreamConnection(fd, family, new RecFactory(Rec))
    p.t.abortConnection()
    t.true((await within(p.waitLost(), 'connectionLost')) instanceof ConnectionAborted)
    await peer.waitClose()
    t.true(peer.ended, 'peer saw EOF')
    t.is(peer.error, undefined, 'no reset while the caller holds the fd')
    t.notThrows(() => fs.fstatSync(fd), "the caller's fd is still open")
    closeFd(fd)
  })

  testIf(HAS_PYTHON, 'python3 not found')(`${tag} abortConnection on an accepted connection (the reactor's fd is the last reference) sends a reset; loseConnection does not`, async (t) => {
    const lfd = listenTcp4()
    const f = new RecFactory(Rec)
    const lp = r.adoptStreamPort(lfd, AddressFamily.INET, f)
    const a = track(sockets.connectTcp('127.0.0.1', portOf(lfd))) // raw peers: nobody reads them
    const b = track(sockets.connectTcp('127.0.0.1', portOf(lfd)))
    await f.waitBuilt(2)
    const [pa, pb] = f.built
    pa.t.abortConnection()
    pb.t.loseConnection()
    t.true((await within(pa.waitLost(), 'lost a')) instanceof ConnectionAborted)
    t.true((await within(pb.waitLost(), 'lost b')) instanceof ConnectionDone)
    // a reset reaching a peer in CLOSE_WAIT (it got our FIN first) leaves EPIPE (or ECONNRESET) in SO_ERROR
    let errA = 0
    await waitUntil(async () => (errA = await soError(a)) !== 0, 'SO_ERROR set on the aborted peer', 10000, 50)
    t.true(errA === 32 || errA === 104, `SO_ERROR of the aborted peer: ${errA}`)
    t.is(await soError(b), 0, 'an orderly close sends no reset')
    closeFd(a)
    closeFd(b)
    await within(lp.stopListening(), 'stop')
  })

  test(`${tag} abortConnection discards pending data`, async (t) => {
    const { fd, family, peer } = await pair('unix')
    peer.sock.pause()
    const p = r.adoptStreamConnection(fd, family, new RecFactory(Rec))
    closeFd(fd)
    const big = Buffer.alloc(4 * 1024 * 1024, 7)
    p.t.write(big)
    t.true(p.t.bufferSize > 0, 'some data is pending')
    p.t.abortConnection()
    t.true((await within(p.waitLost(), 'connectionLost')) instanceof ConnectionAborted)
    peer.sock.resume()
    await peer.waitClose()
    t.true(peer.data.length < big.length, 'pending data was not delivered')
  })

  test(`${tag} writes from inside connectionMade during adoption are sent; loseConnection there closes later, not inside the call`, async (t) => {
    const { fd, family, peer } = await pair('v4')
    let inCall = false
    let lostInCall: boolean | undefined
    class P extends Rec {
      connectionMade() {
        super.connectionMade()
        this.t.write('hi from connectionMade')
        this.t.loseConnection()
      }
      connectionLost(reason: any) {
        lostInCall = inCall
        super.connectionLost(reason)
      }
    }
    inCall = true
    const p = r.adoptStreamConnection(fd, family, new RecFactory(P))
    inCall = false
    t.is(p.lostReasons.length, 0, 'connectionLost is not called inside the adopt call')
    closeFd(fd)
    await peer.waitEnd()
    t.is(peer.text, 'hi from connectionMade')
    t.true((await within(p.waitLost(), 'connectionLost')) instanceof ConnectionDone)
    t.false(lostInCall)
  })

  test(`${tag} connectionLost exactly once, even when the reactor closes afterwards`, async (t) => {
    const r2 = new Reactor({ thread: mode.thread })
    reactors.push(r2)
    const { fd, family, peer } = await pair('v4')
    const p = r2.adoptStreamConnection(fd, family, new RecFactory(Rec))
    closeFd(fd)
    peer.sock.end()
    t.true((await within(p.waitLost(), 'connectionLost')) instanceof ConnectionDone)
    p.t.loseConnection()
    p.t.abortConnection()
    await within(r2.close(), 'reactor close')
    t.is(p.lostReasons.length, 1)
  })

  test(`${tag} several adopted connections are independent`, async (t) => {
    const pairs = await Promise.all([pair('v4'), pair('v6'), pair('unix'), pair('v4')])
    const ps = pairs.map((x) => r.adoptStreamConnection(x.fd, x.family, new RecFactory(EchoRec)))
    pairs.forEach((x) => closeFd(x.fd))
    pairs.forEach((x, i) => x.peer.sock.write(`n${i}`))
    await Promise.all(pairs.map((x, i) => x.peer.waitText(`n${i}`)))
    pairs[1].peer.sock.end()
    await within(ps[1].waitLost(), 'lost 1')
    pairs[0].peer.sock.write('more')
    await pairs[0].peer.waitText('n0more')
    t.is(ps[0].lostReasons.length, 0)
    for (const x of [0, 2, 3]) pairs[x].peer.sock.end()
    await Promise.all([0, 2, 3].map((x) => within(ps[x].waitLost(), 'lost')))
    t.true(ps.every((p: any) => p.reason instanceof ConnectionDone))
  })
}
