// docs/adopting.md "adoptDatagramPort", multicast (IPv4 and IPv6): joinGroup/leaveGroup, TTL, loopback mode, outgoing
// interface. IPv4 round trip on 127.0.0.1; IPv6 join/leave on 'lo' where the kernel allows it.
import test from 'ava'
import { Reactor, AddressFamily } from 'reactor-socket'
import {
  MODES,
  DgramRec,
  bindUdp4,
  bindUdp6,
  portOf,
  within,
  sendUntil,
  quietPeriod,
  fileTeardown,
} from '../helpers.js'

const { reactors } = fileTeardown()

// a multicast failure comes from setsockopt: an Error with code and errno
const hasCode = (e: any) =>
  e instanceof Error && typeof (e as any).code === 'string' && (e as any).code.length > 0 && typeof (e as any).errno === 'number'

let groupCounter = Math.floor(Math.random() * 200)
const nextGroup = () => `239.255.${(process.pid % 200) + 1}.${(++groupCounter % 250) + 1}`

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  test(`${tag} IPv4: join a group on 127.0.0.1, receive, leave, no longer receive`, async (t) => {
    const group = nextGroup()
    const rxFd = bindUdp4('0.0.0.0')
    const rx = new DgramRec()
    const rxPort = r.adoptDatagramPort(rxFd, AddressFamily.INET, rx)
    t.is(rxPort.joinGroup(group, '127.0.0.1'), undefined)
    const tx = r.adoptDatagramPort(bindUdp4(), AddressFamily.INET, new DgramRec())
    t.is(tx.setOutgoingInterface('127.0.0.1'), undefined)
    t.is(tx.getOutgoingInterface(), '127.0.0.1')
    t.is(tx.setLoopbackMode(true), undefined)
    t.true(tx.getLoopbackMode())
    t.is(tx.setTTL(3), undefined)
    t.is(tx.getTTL(), 3)
    await sendUntil(() => tx.write('to the group', [group, portOf(rxFd)]), () => rx.got.length > 0, 'the multicast datagram')
    t.is(rx.got[0].data.toString(), 'to the group')
    await quietPeriod(50, 'resends of the first datagram still on their way, before they are counted')
    const before = rx.got.length
    t.is(rxPort.leaveGroup(group, '127.0.0.1'), undefined)
    const e = t.throws(() => rxPort.leaveGroup(group, '127.0.0.1'), { instanceOf: Error }, 'leaving a group not joined')
    t.true(hasCode(e), `error has a code: ${(e as any)?.code}`)
    tx.write('after leaving', [group, portOf(rxFd)])
    await quietPeriod(150, 'a datagram for the group left')
    t.is(rx.got.length, before, 'nothing received after leaveGroup')
    await within(Promise.all([rxPort.stopListening(), tx.stopListening()]), 'stop')
  })

  test(`${tag} IPv4: TTL and loopback getters follow the setters`, async (t) => {
    const p = r.adoptDatagramPort(bindUdp4(), AddressFamily.INET, new DgramRec())
    for (const ttl of [1, 7, 64, 255]) {
      p.setTTL(ttl)
      t.is(p.getTTL(), ttl)
    }
    for (const on of [false, true, false]) {
      p.setLoopbackMode(on)
      t.is(p.getLoopbackMode(), on)
    }
    await within(p.stopListening(), 'stop')
  })

  test(`${tag} IPv4: multicast failures throw an Error with a code`, async (t) => {
    const p = r.adoptDatagramPort(bindUdp4('0.0.0.0'), AddressFamily.INET, new DgramRec())
    // not a multicast address
    t.true(hasCode(t.throws(() => p.joinGroup('127.0.0.1', '127.0.0.1'))))
    // not an address at all
    t.true(t.throws(() => p.joinGroup('not-an-address', '127.0.0.1')) instanceof Error)
    // leaving a group never joined
    t.true(hasCode(t.throws(() => p.leaveGroup(nextGroup(), '127.0.0.1'))))
    // joining twice
    const g = nextGroup()
    p.joinGroup(g, '127.0.0.1')
    t.true(hasCode(t.throws(() => p.joinGroup(g, '127.0.0.1'))))
    p.leaveGroup(g, '127.0.0.1')
    // outgoing interface: not an address / not a local address
    t.true(t.throws(() => p.setOutgoingInterface('not-an-address')) instanceof Error)
    t.true(hasCode(t.throws(() => p.setOutgoingInterface('192.0.2.254'))))
    // joinGroup without an interface either works or fails with a code
    try {
      p.joinGroup(g)
      p.leaveGroup(g)
    } catch (e) {
      t.true(hasCode(e))
    }
    await within(p.stopListening(), 'stop')
  })

  test(`${tag} IPv6: join/leave on the loopback interface (or a coded error), hop limit and loopback`, async (t) => {
    const p = r.adoptDatagramPort(bindUdp6('::'), AddressFamily.INET6, new DgramRec())
    const group = 'ff02::1:3'
    let joinedWith: string | undefined
    const errors: any[] = []
    for (const iface of ['lo', '::1', '1']) {
      try {
        t.is(p.joinGroup(group, iface), undefined)
        joinedWith = iface
        break
      } catch (e) {
        errors.push(e)
      }
    }
    if (joinedWith !== undefined) {
      t.log(`joined ${group} with iface ${joinedWith}`)
      t.is(p.leaveGroup(group, joinedWith), undefined)
    } else {
      t.log('the kernel refused an IPv6 join on lo:', errors.map((e) => e.code).join(', '))
      t.true(errors.every(hasCode))
    }
    for (const hops of [1, 9, 255]) {
      p.setTTL(hops)
      t.is(p.getTTL(), hops)
    }
    for (const on of [true, false]) {
      p.setLoopbackMode(on)
      t.is(p.getLoopbackMode(), on)
    }
    await within(p.stopListening(), 'stop')
  })

  test(`${tag} IPv6: a v4 group on a v6 port is an error`, async (t) => {
    const p = r.adoptDatagramPort(bindUdp6('::'), AddressFamily.INET6, new DgramRec())
    t.true(t.throws(() => p.joinGroup('239.1.1.1', '127.0.0.1')) instanceof Error)
    await within(p.stopListening(), 'stop')
  })
}
