// Callbacks that throw (docs/adopting.md, "`Reactor` options", onError): inside an adopt call the exception
// propagates with nothing left over and onError not called; otherwise it is reported (onError / stderr),
// the connection aborted with it as the reason, the port / datagram port keeps working. Both reactor
// modes.
import test from 'ava'
import * as fs from 'node:fs'
import { Reactor, AddressFamily, ConnectionDone } from 'reactor-socket'
import {
  MODES,
  Rec,
  EchoRec,
  RecFactory,
  DgramRec,
  adoptablePair,
  listenTcp4,
  bindUdp4,
  udpPeer,
  nodeClient,
  rawClient,
  portOf,
  closeFd,
  within,
  waitUntil,
  fdList,
  linkOf,
  fdsWithLink,
  fixture,
  child,
  type Peer,
  quietPeriod,
  receiveQueue,
  socketInode,
  fileTeardown,
} from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

class Boom extends Error {}

for (const mode of MODES) {
  const reported: unknown[] = []
  const r = new Reactor({ thread: mode.thread, onError: (e: unknown) => reported.push(e) })
  reactors.push(r)
  const tag = `[${mode.name}]`

  test.before(async () => {
    // a first adoption creates the poller (and thread): later fd-table comparisons are stable
    const lp = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, new RecFactory())
    await lp.stopListening()
  })

  async function pair() {
    const x = await adoptablePair('v4')
    cleanups.push(x.cleanup)
    return x
  }

  // ------------------------------------------------------------------- inside the adopt call

  test.serial(`${tag} buildProtocol throwing inside adoptStreamConnection propagates; the duplicate is closed; nothing adopted`, async (t) => {
    const { fd, family, peer } = await pair()
    const link = linkOf(fd)
    const boom = new Boom('build')
    const before = fdList()
    const err = t.throws(() =>
      r.adoptStreamConnection(fd, family, {
        buildProtocol() {
          throw boom
        },
      }),
    )
    t.is(err, boom, 'the same exception reaches the caller')
    t.deepEqual(fdsWithLink(link), [fd], 'duplicate closed before the exception propagates')
    t.deepEqual(fdList(), before, 'no fd left over')
    t.deepEqual(reported, [], 'onError not called')
    // the caller still holds a working connection, and the reactor does not read it
    peer.sock.write('for the caller')
    fs.writeSync(fd, 'from the caller')
    await peer.waitText('from the caller')
    await peer.waitDelivered()
    await quietPeriod(50, "the reactor reading the caller's fd")
    const buf = Buffer.alloc(64)
    t.is(fs.readSync(fd, buf, 0, 64, null), 'for the caller'.length, 'nothing consumed by the reactor')
    closeFd(fd)
  })

  test.serial(`${tag} connectionMade throwing inside adoptStreamConnection propagates; no connectionLost; nothing adopted`, async (t) => {
    const { fd, family, peer } = await pair()
    const link = linkOf(fd)
    const boom = new Boom('made')
    class P extends Rec {
      connectionMade() {
        super.connectionMade()
        throw boom
      }
    }
    const f = new RecFactory(P)
    const before = fdList()
    const err = t.throws(() => r.adoptStreamConnection(fd, family, f))
    t.is(err, boom)
    t.deepEqual(fdsWithLink(link), [fd])
    t.deepEqual(fdList(), before)
    peer.sock.write('x')
    await peer.waitDelivered()
    await quietPeriod(100, 'a connectionLost or dataReceived for the failed adoption')
    const p = f.built[0]
    t.is(p.madeCount, 1)
    t.deepEqual(p.lostReasons, [], 'no connectionLost follows')
    t.deepEqual(p.chunks, [], 'no data delivered')
    t.deepEqual(reported, [])
    t.false(peer.ended, 'the caller still holds the connection')
    closeFd(fd)
    await peer.waitClose()
  })

  test.serial(`${tag} startProtocol throwing inside adoptDatagramPort propagates; no stopProtocol; nothing adopted`, async (t) => {
    const fd = bindUdp4()
    const link = linkOf(fd)
    const boom = new Boom('start')
    class P extends DgramRec {
      startProtocol() {
        super.startProtocol()
        throw boom
      }
    }
    const proto = new P()
    const before = fdList()
    const err = t.throws(() => r.adoptDatagramPort(fd, AddressFamily.INET, proto))
    t.is(err, boom)
    t.deepEqual(fdsWithLink(link), [fd])
    t.deepEqual(fdList(), before)
    const node = await udpPeer()
    cleanups.push(() => node.close())
    await node.send('queued', portOf(fd), '127.0.0.1')
    await waitUntil(() => receiveQueue(socketInode(fd)) > 0, "the datagram queued at the caller's socket")
    await quietPeriod(100, 'the reactor reading the datagram, or a stopProtocol')
    t.is(proto.got.length, 0)
    t.is(proto.stops, 0, 'no stopProtocol follows')
    t.deepEqual(reported, [])
    // the datagram is still in the socket: nobody consumed it
    const again = new DgramRec()
    const port = r.adoptDatagramPort(fd, AddressFamily.INET, again)
    await again.waitCount(1)
    t.is(again.got[0].data.toString(), 'queued')
    await within(port.stopListening(), 'stop')
  })

  // ------------------------------------------------------------------- reported, not propagated

  test(`${tag} buildProtocol throwing on an accepting port: reported, that client closed, the port keeps accepting`, async (t) => {
    const fd = listenTcp4()
    const boom = new Boom('accept-build')
    let n = 0
    const f = new RecFactory(EchoRec)
    const orig = f.buildProtocol.bind(f)
    f.buildProtocol = (addr: any) => {
      if (++n === 1) throw boom
      return orig(addr)
    }
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const c1 = rawClient(portOf(fd))
    await c1.waitClose()
    await waitUntil(() => reported.includes(boom), 'onError(boom)')
    t.is(c1.data.length, 0)
    const c2 = await nodeClient(portOf(fd))
    c2.sock.write('alive')
    await c2.waitText('alive')
    t.is(c2.data.toString(), 'alive', 'the next client was served')
    c2.destroy()
    await within(f.built[0].waitLost(), 'lost')
    t.is(f.built.length, 1, 'one protocol built: the throwing call built none')
    await within(lp.stopListening(), 'stop')
  })

  for (const where of ['connectionMade', 'dataReceived', 'readConnectionLost'] as const) {
    test(`${tag} ${where} throwing on a live connection: reported, connection aborted, connectionLost gets the error`, async (t) => {
      const fd = listenTcp4()
      const boom = new Boom(where)
      class P extends Rec {
        connectionMade() {
          super.connectionMade()
          if (where === 'connectionMade') throw boom
        }
        dataReceived(d: Buffer) {
          super.dataReceived(d)
          if (where === 'dataReceived') throw boom
        }
        readConnectionLost() {
          this.log.push('readLost')
          if (where === 'readConnectionLost') throw boom
        }
      }
      const f = new RecFactory(P)
      const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
      // connected by the kernel before the accept, so an early abort cannot fail the connect
      const c: Peer = rawClient(portOf(fd))
      await f.waitBuilt(1)
      if (where === 'dataReceived') c.sock.write('trigger')
      if (where === 'readConnectionLost') c.sock.end()
      const p = f.built[0]
      const reason = await within(p.waitLost(), 'connectionLost')
      t.is(reason, boom, 'connectionLost receives the thrown error')
      t.true(reported.includes(boom), 'reported through onError')
      await c.waitClose()
      await quietPeriod(30, 'a second connectionLost')
      t.is(p.lostReasons.length, 1)
      await within(lp.stopListening(), 'stop')
    })
  }

  test(`${tag} connectionLost throwing: reported once, nothing else happens`, async (t) => {
    const { fd, family, peer } = await pair()
    const boom = new Boom('lost')
    class P extends Rec {
      connectionLost(reason: any) {
        super.connectionLost(reason)
        throw boom
      }
    }
    const p = r.adoptStreamConnection(fd, family, new RecFactory(P))
    closeFd(fd)
    peer.sock.end()
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
    await waitUntil(() => reported.includes(boom), 'reported')
    await quietPeriod(30, 'a second connectionLost or report')
    t.is(p.lostReasons.length, 1)
    t.is(reported.filter((e) => e === boom).length, 1)
  })

  test(`${tag} datagramReceived throwing: reported, the port keeps receiving`, async (t) => {
    const fd = bindUdp4()
    const boom = new Boom('dgram')
    class P extends DgramRec {
      datagramReceived(data: Buffer, addr: any) {
        super.datagramReceived(data, addr)
        if (data.toString() === 'first') throw boom
      }
    }
    const proto = new P()
    const port = r.adoptDatagramPort(fd, AddressFamily.INET, proto)
    const node = await udpPeer()
    cleanups.push(() => node.close())
    await node.send('first', portOf(fd), '127.0.0.1')
    await waitUntil(() => reported.includes(boom), 'reported')
    await node.send('second', portOf(fd), '127.0.0.1')
    await proto.waitCount(2)
    t.deepEqual(
      proto.got.map((g) => g.data.toString()),
      ['first', 'second'],
    )
    t.is(proto.stops, 0)
    await within(port.stopListening(), 'stop')
  })

  test(`${tag} exceptions never crash the process by default: reported on stderr`, async (t) => {
    const c = child(fixture('throws-default.mjs'), [mode.name])
    const port = Number(await c.line('PORT '))
    const peer = await nodeClient(port)
    peer.sock.write('trigger')
    await peer.waitClose()
    const res = await c.wait()
    t.is(res.signal, null)
    t.is(res.code, 0, res.stderr)
    t.regex(res.stderr, /boom-from-dataReceived/)
    t.regex(res.stdout, /LOST boom-from-dataReceived/)
  })
}
