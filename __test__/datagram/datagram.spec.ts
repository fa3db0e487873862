// docs/adopting.md "adoptDatagramPort": adoptDatagramPort, datagramReceived, truncation,
// write/writeSequence/connect, address and size errors, connectionRefused, broadcast, stopListening,
// DatagramProtocol counting. Both reactor modes.
import test from 'ava'
import * as fs from 'node:fs'
import * as crypto from 'node:crypto'
import { spawn } from 'node:child_process'
import {
  Reactor,
  AddressFamily,
  DatagramProtocol,
  InvalidAddressError,
  MessageLengthError,
  IPv4Address,
  IPv6Address,
  sockets,
} from 'reactor-socket'
import {
  MODES,
  DgramRec,
  bindUdp4,
  bindUdp6,
  udpPeer,
  portOf,
  closeFd,
  within,
  sendUntil,
  drainCurrentTurn,
  socketOptions,
  linkOf,
  fdsWithLink,
  isCloexec,
  fixture,
  Child,
  HAS_PYTHON,
  testIf,
  quietPeriod,
  fileTeardown,
} from '../helpers.js'

const INET = AddressFamily.INET
const INET6 = AddressFamily.INET6
const { reactors, cleanups } = fileTeardown()

async function peer(type: 'udp4' | 'udp6' = 'udp4') {
  const u = await udpPeer(type)
  cleanups.push(() => u.close())
  return u
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const kind of ['v4', 'v6'] as const) {
    const fam = kind === 'v4' ? INET : INET6
    const ip = kind === 'v4' ? '127.0.0.1' : '::1'
    const Cls = kind === 'v4' ? IPv4Address : IPv6Address

    test(`${tag} ${kind}: startProtocol inside the adopt call; datagramReceived(data, addr) with type UDP; getHost`, async (t) => {
      const fd = kind === 'v4' ? bindUdp4() : bindUdp6()
      let inCall = false
      let startedInCall: boolean | undefined
      class P extends DgramRec {
        startProtocol() {
          super.startProtocol()
          startedInCall = inCall
        }
      }
      const proto = new P()
      inCall = true
      const port = r.adoptDatagramPort(fd, fam, proto)
      inCall = false
      t.true(startedInCall, 'startProtocol ran synchronously inside adoptDatagramPort')
      t.is(proto.transportAtStart, port, 'the DatagramPort is protocol.transport during startProtocol')
      t.is(proto.t, port)
      const host = port.getHost()
      t.true(host instanceof Cls)
      t.like(host, { type: 'UDP', host: ip, port: portOf(fd) })
      const node = await peer(kind === 'v4' ? 'udp4' : 'udp6')
      await node.send('hello', portOf(fd), ip)
      await node.send(Buffer.from([0, 1, 2, 255]), portOf(fd), ip)
      await proto.waitCount(2)
      t.true(Buffer.isBuffer(proto.got[0].data))
      t.is(proto.got[0].data.toString(), 'hello')
      t.deepEqual([...proto.got[1].data], [0, 1, 2, 255])
      const addr = proto.got[0].addr
      t.true(addr instanceof Cls)
      t.like(addr, { type: 'UDP', host: ip, port: node.port })
      if (kind === 'v6') t.like(addr, { flowInfo: 0, scopeID: 0 })
      await within(port.stopListening(), 'stopListening')
    })

    test(`${tag} ${kind}: write to an address (bytes and strings), writeSequence as one datagram`, async (t) => {
      const fd = kind === 'v4' ? bindUdp4() : bindUdp6()
      const proto = new DgramRec()
      const port = r.adoptDatagramPort(fd, fam, proto)
      const node = await peer(kind === 'v4' ? 'udp4' : 'udp6')
      const to: [string, number] = [ip, node.port]
      t.is(port.write('strïng', to), undefined)
      port.write(Buffer.from('buf'), to)
      port.write(new Uint8Array([0, 120, 121, 0]).subarray(1, 3), to)
      port.writeSequence(['a', Buffer.from('b'), new Uint8Array([99])], to)
      await node.waitCount(4)
      t.deepEqual(
        node.got.map((g) => g.data.toString()),
        ['strïng', 'buf', 'xy', 'abc'],
      )
      t.is(node.got[0].rinfo.port, portOf(fd))
      await within(port.stopListening(), 'stopListening')
    })

    test(`${tag} ${kind}: a host that is not an IP literal of the port's family → InvalidAddressError`, async (t) => {
      const fd = kind === 'v4' ? bindUdp4() : bindUdp6()
      const port = r.adoptDatagramPort(fd, fam, new DgramRec())
      const other = kind === 'v4' ? '::1' : '127.0.0.1'
      for (const host of ['localhost', 'example.com', other, '', '1.2.3', 'not an ip']) {
        const e1 = t.throws(() => port.write('x', [host, 9]), { instanceOf: InvalidAddressError }, `write to ${host}`)
        t.true(e1 instanceof Error)
        t.throws(() => port.writeSequence(['x'], [host, 9]), { instanceOf: InvalidAddressError })
        t.throws(() => port.connect(host, 9), { instanceOf: InvalidAddressError }, `connect to ${host}`)
      }
      // write without an address on an unconnected port
      t.throws(() => port.write('x'), { instanceOf: InvalidAddressError })
      t.throws(() => port.writeSequence(['x']), { instanceOf: InvalidAddressError })
      // the port is still usable and unconnected
      const node = await peer(kind === 'v4' ? 'udp4' : 'udp6')
      port.write('fine', [ip, node.port])
      await node.waitCount(1)
      await within(port.stopListening(), 'stopListening')
    })

    test(`${tag} ${kind}: a packet too large → MessageLengthError`, async (t) => {
      const fd = kind === 'v4' ? bindUdp4() : bindUdp6()
      const port = r.adoptDatagramPort(fd, fam, new DgramRec())
      const node = await peer(kind === 'v4' ? 'udp4' : 'udp6')
      const e = t.throws(() => port.write(Buffer.alloc(70000), [ip, node.port]), { instanceOf: MessageLengthError })
      t.true(e instanceof Error)
      t.throws(() => port.writeSequence([Buffer.alloc(40000), Buffer.alloc(30000)], [ip, node.port]), {
        instanceOf: MessageLengthError,
      })
      port.write(Buffer.alloc(60000, 1), [ip, node.port]) // fits on loopback
      await node.waitCount(1)
      t.is(node.got[0].data.length, 60000)
      await within(port.stopListening(), 'stopListening')
    })
  }

  test(`${tag} packets that are not bytes or strings → TypeError, nothing sent`, async (t) => {
    const port = r.adoptDatagramPort(bindUdp4(), INET, new DgramRec())
    const node = await peer()
    for (const bad of [123, {}, null, [1], true, new ArrayBuffer(1)] as any[]) {
      t.throws(() => port.write(bad, ['127.0.0.1', node.port]), { instanceOf: TypeError })
    }
    t.throws(() => port.writeSequence(['a', 5] as any, ['127.0.0.1', node.port]), { instanceOf: TypeError })
    port.write('only', ['127.0.0.1', node.port])
    await node.waitCount(1)
    // one socket's datagrams arrive in order on loopback, so whatever the refused writes had sent
    // would be here already; the quiet period only covers a sender that reorders
    await quietPeriod(50, 'a datagram from a refused write')
    t.deepEqual(
      node.got.map((g) => g.data.toString()),
      ['only'],
    )
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} a datagram larger than maxPacketSize is delivered truncated; the default is 8192`, async (t) => {
    const fdSmall = bindUdp4()
    const small = new DgramRec()
    const p1 = r.adoptDatagramPort(fdSmall, INET, small, 100)
    const fdDefault = bindUdp4()
    const dflt = new DgramRec()
    const p2 = r.adoptDatagramPort(fdDefault, INET, dflt)
    const fdMax = bindUdp4()
    const max = new DgramRec()
    const p3 = r.adoptDatagramPort(fdMax, INET, max, 65535)
    const node = await peer()
    const payload = Buffer.from(Array.from({ length: 60000 }, (_, i) => i % 251))
    await node.send(payload.subarray(0, 300), portOf(fdSmall), '127.0.0.1')
    await node.send(payload.subarray(0, 100), portOf(fdSmall), '127.0.0.1')
    await node.send(payload.subarray(0, 10000), portOf(fdDefault), '127.0.0.1')
    await node.send(payload, portOf(fdMax), '127.0.0.1')
    await small.waitCount(2)
    await dflt.waitCount(1)
    await max.waitCount(1)
    t.is(small.got[0].data.length, 100)
    t.true(small.got[0].data.equals(payload.subarray(0, 100)))
    t.true(small.got[1].data.equals(payload.subarray(0, 100)))
    t.is(dflt.got[0].data.length, 8192)
    t.true(dflt.got[0].data.equals(payload.subarray(0, 8192)))
    t.true(max.got[0].data.equals(payload))
    await within(Promise.all([p1.stopListening(), p2.stopListening(), p3.stopListening()]), 'stop')
  })

  test(`${tag} connected mode: write without an address, replies arrive; a second connect → EISCONN`, async (t) => {
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(bindUdp4(), INET, proto)
    const node = await peer()
    t.is(port.connect('127.0.0.1', node.port), undefined)
    port.write('c1')
    port.writeSequence(['c', '2'])
    await node.waitCount(2)
    t.deepEqual(
      node.got.map((g) => g.data.toString()),
      ['c1', 'c2'],
    )
    await node.send('reply', node.got[0].rinfo.port, '127.0.0.1')
    await proto.waitCount(1)
    t.like(proto.got[0].addr, { host: '127.0.0.1', port: node.port })
    const e = t.throws(() => port.connect('127.0.0.1', node.port), { code: 'EISCONN' })
    t.true(e instanceof Error)
    t.is(Math.abs((e as any).errno), 106, 'errno of EISCONN')
    t.throws(() => port.connect('127.0.0.1', node.port + 1 > 65535 ? 1 : node.port + 1), { code: 'EISCONN' })
    t.is(proto.refused, 0)
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} connected mode: a refusal reported by the kernel calls connectionRefused()`, async (t) => {
    const closed = await udpPeer()
    const deadPort = closed.port
    closed.close()
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(bindUdp4(), INET, proto)
    port.connect('127.0.0.1', deadPort)
    const errors: unknown[] = []
    const ping = () => {
      try {
        port.write('ping')
      } catch (e) {
        errors.push(e)
      }
    }
    await sendUntil(ping, () => proto.refused > 0, 'connectionRefused', 10000, 20)
    t.true(proto.refused >= 1, 'connectionRefused was called')
    t.deepEqual(errors, [], 'the refusal is reported through connectionRefused, not thrown from write')
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} unconnected mode: no connectionRefused for a closed destination`, async (t) => {
    const closed = await udpPeer()
    const deadPort = closed.port
    closed.close()
    const proto = new DgramRec()
    const fd = bindUdp4()
    const port = r.adoptDatagramPort(fd, INET, proto)
    for (let i = 0; i < 5; i++) t.notThrows(() => port.write('ping', ['127.0.0.1', deadPort]))
    const node = await peer()
    await node.send('marker', portOf(fd), '127.0.0.1')
    await proto.waitCount(1)
    await quietPeriod(50, 'a connectionRefused for the pings sent before the marker')
    t.is(proto.refused, 0)
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} broadcast: allowed flag round-trips and a broadcast reaches a receiver`, async (t) => {
    const rx = new DgramRec()
    const rxFd = bindUdp4('0.0.0.0')
    const rxPort = r.adoptDatagramPort(rxFd, INET, rx)
    const tx = r.adoptDatagramPort(bindUdp4(), INET, new DgramRec())
    t.is(tx.setBroadcastAllowed(true), undefined)
    t.true(tx.getBroadcastAllowed())
    tx.setBroadcastAllowed(false)
    t.false(tx.getBroadcastAllowed())
    tx.setBroadcastAllowed(true)
    await sendUntil(() => tx.write('to everyone', ['127.255.255.255', portOf(rxFd)]), () => rx.got.length > 0, 'the broadcast')
    t.is(rx.got[0].data.toString(), 'to everyone')
    await within(Promise.all([rxPort.stopListening(), tx.stopListening()]), 'stop')
  })

  test(`${tag} stopListening: later turn, after stopProtocol and the duplicate closed; transport cleared; every call resolves`, async (t) => {
    const fd = bindUdp4()
    const link = linkOf(fd)
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(fd, INET, proto)
    t.is(fdsWithLink(link).length, 2)
    t.true(isCloexec(fdsWithLink(link).find((x) => x !== fd)!))
    t.true(sockets.info(fd).nonBlocking)
    const host = port.getHost()
    let inside = false
    let stoppedInside: boolean | undefined
    proto.stopProtocol = function () {
      DgramRec.prototype.stopProtocol.call(this)
      stoppedInside = inside
    }
    let settled = false
    let atSettle: any
    inside = true
    const p = port.stopListening()
    inside = false
    p.then(() => {
      settled = true
      atSettle = { stops: proto.stops, fds: fdsWithLink(link).length, transport: proto.t }
    })
    await drainCurrentTurn()
    t.false(settled, 'not settled within the current macrotask (microtasks and nextTicks drained)')
    await within(p, 'stopListening')
    t.false(stoppedInside, 'stopProtocol not called from inside stopListening')
    t.is(atSettle.stops, 1)
    t.is(atSettle.fds, 1, 'duplicate closed')
    t.falsy(atSettle.transport, 'transport cleared after stopProtocol')
    await within(port.stopListening(), 'second stopListening')
    await within(Promise.all([port.stopListening(), port.stopListening()]), 'more stopListening')
    t.is(proto.stops, 1)
    t.deepEqual(port.getHost(), host, 'getHost after the stop')
    // the caller's fd still receives: adopt it again
    const proto2 = new DgramRec()
    const port2 = r.adoptDatagramPort(fd, INET, proto2)
    const node = await peer()
    await node.send('again', portOf(fd), '127.0.0.1')
    await proto2.waitCount(1)
    t.is(proto.got.length, 0)
    await within(port2.stopListening(), 'stop 2')
  })

  testIf(HAS_PYTHON, 'python3 not found')(`${tag} adoption changes no socket option (dgram's bind({fd}) would set SO_REUSEADDR)`, async (t) => {
    const fd = bindUdp4()
    const before = await socketOptions(fd)
    const port = r.adoptDatagramPort(fd, INET, new DgramRec())
    t.deepEqual(await socketOptions(fd), before)
    await within(port.stopListening(), 'stop')
    t.deepEqual(await socketOptions(fd), before)
  })

  test(`${tag} stopListening called inside startProtocol: stopProtocol runs later, never re-entrantly`, async (t) => {
    let stopP: Promise<void> | undefined
    let inStart = false
    let stopInStart: boolean | undefined
    class P extends DgramRec {
      startProtocol() {
        super.startProtocol()
        inStart = true
        stopP = this.t.stopListening()
        inStart = false
      }
      stopProtocol() {
        stopInStart = inStart
        super.stopProtocol()
      }
    }
    const proto = new P()
    const port = r.adoptDatagramPort(bindUdp4(), INET, proto)
    t.truthy(port)
    t.is(proto.stops, 0, 'stopProtocol not called inside the adopt call')
    t.true(stopP instanceof Promise)
    await within(stopP!, 'stopListening from startProtocol')
    t.is(proto.stops, 1)
    t.false(stopInStart)
    t.deepEqual(proto.log, ['start', 'stop'])
    t.falsy(proto.t)
  })

  test(`${tag} DatagramProtocol counts ports: startProtocol on 0→1, stopProtocol on 1→0`, async (t) => {
    const proto = new DgramRec()
    t.true(proto instanceof DatagramProtocol)
    const a = r.adoptDatagramPort(bindUdp4(), INET, proto)
    const b = r.adoptDatagramPort(bindUdp4(), INET, proto)
    t.is(proto.starts, 1)
    await within(a.stopListening(), 'stop a')
    t.is(proto.stops, 0)
    await within(b.stopListening(), 'stop b')
    t.is(proto.stops, 1)
  })

  test(`${tag} the caller may close its fd right after adopting; the port still receives`, async (t) => {
    const fd = bindUdp4()
    const portNo = portOf(fd)
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(fd, INET, proto)
    closeFd(fd)
    const node = await peer()
    await node.send('x', portNo, '127.0.0.1')
    await proto.waitCount(1)
    t.like(port.getHost(), { port: portNo })
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} many datagrams arrive, in order`, async (t) => {
    const fd = bindUdp4()
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(fd, INET, proto)
    const node = await peer()
    for (let i = 0; i < 50; i++) await node.send(`d${i}`, portOf(fd), '127.0.0.1')
    await proto.waitCount(50)
    t.deepEqual(
      proto.got.map((g) => g.data.toString()),
      Array.from({ length: 50 }, (_, i) => `d${i}`),
    )
    // and replies to each sender address
    for (const g of proto.got.slice(0, 5)) port.write('re:' + g.data.toString(), [g.addr.host, g.addr.port])
    await node.waitCount(5)
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} DatagramPort ref()/unref() return the port`, async (t) => {
    const port = r.adoptDatagramPort(bindUdp4(), INET, new DgramRec())
    t.is(port.unref(), port)
    t.is(port.ref(), port)
    await within(port.stopListening(), 'stopListening')
  })

  testIf(HAS_PYTHON, 'python3 not found, and Node cannot make these sockets')(`${tag} sockets Node cannot make: unbound UDP, bound non-listening TCP, SEQPACKET, UNIX datagram`, async (t) => {
    // python3 makes the sockets Node cannot make, and execs a Node fixture with them as fds 3, 4, 5
    const py = [
      'import socket, os, sys',
      'u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      't4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM); t4.bind(("127.0.0.1", 0))',
      'u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
      'sp, sp2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
      'ud = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      'fds = [os.dup(s.fileno()) for s in (u4, t4, u6, sp, ud)]',
      'for target, fd in zip((3, 4, 5, 6, 7), fds): os.dup2(fd, target); os.set_inheritable(target, True)',
      'os.execv(sys.argv[1], sys.argv[1:])',
    ].join('\n')
    const c = new Child(
      spawn('python3', ['-c', py, process.execPath, fixture('unbound.mjs'), mode.thread ? 'thread' : 'no-thread'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    const res = await c.wait(15000)
    t.is(res.code, 0, res.stderr)
    const out = JSON.parse((await c.line('RESULT ')) || '{}')
    t.deepEqual(out.v4.hostBefore, { type: 'UDP', host: '0.0.0.0', port: 0 })
    t.is(out.v4.received, 'hi')
    t.true(out.v4.hostAfter.port > 0, 'bound by the kernel on the first send')
    t.is(out.v4.hostAfter.port, out.v4.seenFromPort)
    t.is(out.v4.reply, 'pong')
    t.like(out.v6.hostBefore, { type: 'UDP', host: '::', port: 0 })
    t.is(out.tcp.port, 'EINVAL')
    t.true(out.tcp.portMessageSaysListen)
    t.is(out.tcp.connection, 'ENOTCONN')
    // SOCK_SEQPACKET and UNIX datagram sockets
    t.deepEqual(out.seqpacket, { port: ['UnsupportedSocketType', 5], connection: ['UnsupportedSocketType', 5] })
    t.deepEqual(out.unixDgram, {
      datagram: ['UnsupportedAddressFamily', 1],
      port: ['UnsupportedSocketType', 2],
    })
    // the messages name the types and families (SOCK_SEQPACKET is one Node cannot make)
    t.deepEqual(out.messages, {
      seqpacketPort: 'adoptStreamPort: fd 6 is a SOCK_SEQPACKET socket; adoptStreamPort needs SOCK_STREAM',
      unixDgramDatagram: 'adoptDatagramPort: address family AF_UNIX (1) is not supported; use AF_INET or AF_INET6',
      unixDgramPort: 'adoptStreamPort: fd 7 is a SOCK_DGRAM socket; adoptStreamPort needs SOCK_STREAM',
    })
  })
  test(`${tag} datagrams of many sizes, kept by reference, arrive intact`, async (t) => {
    const fd = bindUdp4()
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(fd, INET, proto, 65535)
    const node = await peer()
    const sent: Buffer[] = []
    // paced in bursts: UDP may drop what the receiver cannot drain (the sender shares this thread)
    for (let burst = 0; burst < 10; burst++) {
      for (let k = 0; k < 20; k++) {
        const i = burst * 20 + k
        const size = i % 50 === 0 ? 20000 + i : 1 + Math.floor(Math.random() * 1400)
        const b = crypto.randomBytes(size)
        sent.push(b)
        node.sock.send(b, portOf(fd), '127.0.0.1')
      }
      await proto.waitCount(sent.length)
    }
    await proto.waitCount(200, 10000)
    t.is(proto.got.length, 200)
    proto.got.forEach((g, i) => t.true(g.data.equals(sent[i]), `datagram ${i}`))
    await within(port.stopListening(), 'stop')
  })

  test(`${tag} IPv6 connected mode: write without address, refusal → connectionRefused`, async (t) => {
    const proto = new DgramRec()
    const port = r.adoptDatagramPort(bindUdp6(), INET6, proto)
    const node = await peer('udp6')
    port.connect('::1', node.port)
    port.write('v6c')
    await node.waitCount(1)
    t.is(node.got[0].data.toString(), 'v6c')
    const dead = await udpPeer('udp6')
    const deadPort = dead.port
    dead.close()
    const p2 = new DgramRec()
    const port2 = r.adoptDatagramPort(bindUdp6(), INET6, p2)
    port2.connect('::1', deadPort)
    await sendUntil(() => port2.write('ping'), () => p2.refused > 0, 'connectionRefused (v6)', 10000, 20)
    t.true(p2.refused >= 1)
    await within(Promise.all([port.stopListening(), port2.stopListening()]), 'stop')
  })
  for (const where of ['test body', 'datagramReceived'] as const) {
    for (const then of ['stopListening', 'reactor.close'] as const) {
      test(`${tag} a datagram written just before ${then} (from the ${where}) is still sent`, async (t) => {
        const rr = then === 'reactor.close' ? new Reactor({ thread: mode.thread }) : r
        if (rr !== r) reactors.push(rr)
        const fd = bindUdp4()
        const node = await peer()
        let stopped: Promise<void> | undefined
        class P extends DgramRec {
          datagramReceived(data: Buffer, addr: any) {
            super.datagramReceived(data, addr)
            this.t.write('bye', [addr.host, addr.port])
            stopped = then === 'stopListening' ? this.t.stopListening() : rr.close()
          }
        }
        const proto = new P()
        const port = rr.adoptDatagramPort(fd, INET, proto)
        if (where === 'test body') {
          port.write('bye', ['127.0.0.1', node.port])
          stopped = then === 'stopListening' ? port.stopListening() : rr.close()
        } else {
          await node.send('trigger', portOf(fd), '127.0.0.1')
          await proto.waitCount(1)
        }
        await within(stopped!, then)
        await node.waitCount(1, 3000).catch(() => {})
        t.deepEqual(
          node.got.map((g) => g.data.toString()),
          ['bye'],
          'a write that did not throw is sent, as with Twisted and Node',
        )
      })
    }
  }
}

test('fixture for the unbound socket test exists', (t) => {
  t.true(fs.existsSync(fixture('unbound.mjs')))
})
