// docs/udp-forwarder.md: reactor.listenDatagramProxy. Sessions per client with their own
// connected upstream socket, idle expiry, responses, the session cap, source ports, replies from a
// wrong source, round robin, the routing function (null, throwing, batched), the PROXY v2 header,
// stopListening, buffer sizes. Both reactor modes; every test checks that no fd is left.
import test from 'ava'
import { AddressFamily, DatagramProxyPort, InvalidAddressError, sockets, type DatagramProxyStats } from 'reactor-socket'
import { MODES, reactorHarness, waitUntil, quietPeriod, within, fdList, type Mode } from '../helpers.js'
import { UdpClient, UdpUpstream, freePortPair, parseProxyV2 } from '../helpers/datagram-proxy.js'

const INET = AddressFamily.INET
const INET6 = AddressFamily.INET6

/** A reactor harness with a bound listening socket and peers closed at the end of the test. */
async function setup(t: any, mode: Mode) {
  const h = reactorHarness(t, mode)
  const closers: (() => void)[] = []
  t.teardown(() => closers.forEach((c) => c()))
  const upstream = async (reply?: (p: Buffer, port: number) => Buffer | null, type: 'udp4' | 'udp6' = 'udp4') => {
    const u = await UdpUpstream.start(reply, type)
    closers.push(() => u.close())
    return u
  }
  const client = async (type: 'udp4' | 'udp6' = 'udp4') => {
    const c = await UdpClient.start(type)
    closers.push(() => c.close())
    return c
  }
  /** Binds a socket, makes the proxy on it, closes our fd (the reactor has its own). */
  const listen = (options: Parameters<typeof h.r.listenDatagramProxy>[2], host = '127.0.0.1') => {
    const fd = sockets.bindUdp({ host, port: 0 })
    try {
      return h.r.listenDatagramProxy(fd, host.includes(':') ? INET6 : INET, options)
    } finally {
      sockets.close(fd)
    }
  }
  /** Peers close before the reactor's fd check. */
  const finish = async (expectReported: unknown[] = []) => {
    closers.forEach((c) => c())
    closers.length = 0
    await h.finish(expectReported)
  }
  return { ...h, upstream, client, listen, finish }
}

function statsUntil(port: DatagramProxyPort, cond: (s: DatagramProxyStats) => boolean, what: string): Promise<DatagramProxyStats> {
  let last = port.stats()
  return waitUntil(() => cond((last = port.stats())), () => `${what} (${JSON.stringify(last)})`).then(() => last)
}

for (const mode of MODES) {
  const title = (s: string) => `[${mode.name}] ${s}`

  test.serial(title('many clients at once: one session each, and each gets only its own replies'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address })
    t.true(port instanceof DatagramProxyPort)
    t.is(port.getHost().port > 0, true)
    const clients = await Promise.all(Array.from({ length: 40 }, () => s.client()))
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 5; k++) await c.ask(`client ${i} datagram ${k}`, port.getHost().port)
    }))
    for (const [i, c] of clients.entries()) {
      t.true(c.answers.every((a) => a.startsWith(`client ${i} `)), `client ${i} got only its own replies`)
    }
    const st = await statsUntil(port, (x) => x.datagramsToClients >= 200, 'the replies counted')
    t.is(st.sessionsCreated, 40)
    t.is(st.sessionsActive, 40)
    t.is(new Set(up.sources).size, 40, 'each session has its own upstream socket (source port)')
    t.true(st.datagramsFromClients >= 200 && st.datagramsToUpstreams === st.datagramsFromClients)
    t.true(st.bytesFromClients > 0 && st.bytesToClients === st.bytesFromUpstreams)
    await s.finish()
  })

  test.serial(title('IPv6 clients through an IPv6 listening socket to an IPv4 upstream'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address }, '::1')
    t.is(port.getHost().host, '::1')
    const c = await s.client('udp6')
    await c.ask('over v6', port.getHost().port, 'over v6', '::1')
    await s.finish()
  })

  test.serial(title('idle sessions expire: their sockets close, and a new datagram opens a new session'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address, idleTimeout: 150 })
    const c = await s.client()
    const before = fdList()
    await c.ask('one', port.getHost().port)
    await statsUntil(port, (x) => x.sessionsActive === 1, 'the session')
    t.true(fdList().length > before.length, 'the session holds a socket')
    const st = await statsUntil(port, (x) => x.sessionsExpired === 1, 'the expiry')
    t.is(st.sessionsActive, 0)
    await waitUntil(() => fdList().length === before.length, 'the session socket to close')
    await c.ask('two', port.getHost().port)
    await statsUntil(port, (x) => x.sessionsCreated === 2, 'a second session')
    await s.finish()
  })

  test.serial(title('maxSessions: a new client past it is dropped and counted, the others are served'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address, maxSessions: 2 })
    const [a, b, c] = await Promise.all([s.client(), s.client(), s.client()])
    await a.ask('a', port.getHost().port)
    await b.ask('b', port.getHost().port)
    c.send('c', port.getHost().port)
    const st = await statsUntil(port, (x) => x.refusedMaxSessions === 1, 'the refusal')
    t.is(st.sessionsActive, 2)
    t.is(st.datagramsDropped, 1)
    await a.ask('a again', port.getHost().port)
    await quietPeriod(100, 'an answer to the refused client')
    t.deepEqual(c.answers, [])
    await s.finish()
  })

  test.serial(title('source ports: with a range of 2, a third client is refused and counted, the two others served'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const [low, high] = freePortPair()
    const port = s.listen({ upstream: up.address, sourcePortRange: [low, high] })
    const [a, b, c] = await Promise.all([s.client(), s.client(), s.client()])
    await a.ask('a', port.getHost().port)
    await b.ask('b', port.getHost().port)
    c.send('c', port.getHost().port)
    const st = await statsUntil(port, (x) => x.refusedNoSourcePort === 1, 'the refusal')
    t.is(st.sessionsActive, 2)
    t.deepEqual([...new Set(up.sources)].sort(), [low, high], 'upstream sockets bound in the range')
    await a.ask('a2', port.getHost().port)
    await b.ask('b2', port.getHost().port)
    t.deepEqual(c.answers, [])
    await s.finish()
  })

  test.serial(title('a reply from another source to a session socket never reaches the client (the kernel filters)'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address })
    const c = await s.client()
    await c.ask('one', port.getHost().port)
    const sessionPort = up.sources[0]
    const intruder = await s.client()
    intruder.send('forged', sessionPort)
    await c.ask('two', port.getHost().port)
    await quietPeriod(100, 'the forged datagram')
    t.deepEqual(c.answers, ['one', 'two'])
    const st = port.stats()
    t.is(st.datagramsFromUpstreams, 2, 'the session socket never received the forged datagram')
    await s.finish()
  })

  test.serial(title('a list of upstreams: new sessions go to each in turn'), async (t) => {
    const s = await setup(t, mode)
    const [u1, u2] = await Promise.all([s.upstream((p) => Buffer.from(`1:${p}`)), s.upstream((p) => Buffer.from(`2:${p}`))])
    const port = s.listen({ upstream: [u1.address, u2.address] })
    const clients = await Promise.all([0, 1, 2, 3].map(() => s.client()))
    for (const [i, c] of clients.entries()) await c.ask(`c${i}`, port.getHost().port, `${(i % 2) + 1}:c${i}`)
    t.is(u1.received.length, 2)
    t.is(u2.received.length, 2)
    await s.finish()
  })

  test.serial(title('the routing function: once per new client with its first datagram; null drops and counts'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const calls: string[] = []
    const port = s.listen({
      upstream: (client, first) => {
        t.is(client.type, 'UDP')
        calls.push(`${client.port} ${first.toString()}`)
        return first.toString().startsWith('ok') ? up.address : null
      },
    })
    const [a, b] = await Promise.all([s.client(), s.client()])
    // Three datagrams at once: the later ones wait with the first for the answer.
    a.send('ok 1', port.getHost().port)
    a.send('ok 2', port.getHost().port)
    a.send('ok 3', port.getHost().port)
    b.send('no', port.getHost().port)
    await waitUntil(() => a.answers.length === 3, 'the three answers')
    t.deepEqual(a.answers, ['ok 1', 'ok 2', 'ok 3'], 'in order, none lost while routing')
    const st = await statsUntil(port, (x) => x.refusedByRoute === 1, 'the refusal')
    t.deepEqual(calls.sort(), [`${a.port} ok 1`, `${b.port} no`].sort(), 'called once per new client')
    t.is(st.sessionsActive, 1)
    t.is(st.sessionsRouting, 0)
    await quietPeriod(100, 'an answer to the refused client')
    t.deepEqual(b.answers, [])
    await s.finish()
  })

  test.serial(title('a routing function that throws or answers nonsense is reported to onError and the client refused'), async (t) => {
    const s = await setup(t, mode)
    const boom = new Error('boom')
    const port = s.listen({
      upstream: (_client, first) => {
        if (first.toString() === 'throw') throw boom
        return { host: 'not an ip', port: 53 }
      },
    })
    const [a, b] = await Promise.all([s.client(), s.client()])
    a.send('throw', port.getHost().port)
    b.send('nonsense', port.getHost().port)
    const st = await statsUntil(port, (x) => x.refusedByRoute === 2, 'both refusals')
    t.is(st.sessionsActive, 0)
    t.is(s.reported.length, 2)
    t.true(s.reported.includes(boom))
    t.true(s.reported.some((e) => e instanceof InvalidAddressError))
    await s.finish([...s.reported])
  })

  test.serial(title('responses: 1 ends each session with its reply, as DNS wants'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address, responses: 1, idleTimeout: Infinity })
    const c = await s.client()
    for (let i = 0; i < 3; i++) await c.ask(`query ${i}`, port.getHost().port)
    const st = await statsUntil(port, (x) => x.sessionsCompleted === 3, 'three completed sessions')
    t.is(st.sessionsActive, 0)
    t.is(st.sessionsCreated, 3)
    await s.finish()
  })

  test.serial(title("proxyHeader 'v2': each datagram to the upstream starts with the client's address"), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream((d) => {
      const h = parseProxyV2(d)
      return Buffer.from(h === null ? 'no header' : `${h.family} ${h.host}:${h.port} ${h.payload}`)
    })
    const port = s.listen({ upstream: up.address, proxyHeader: 'v2' })
    const c = await s.client()
    await c.ask('hello', port.getHost().port, `udp4 127.0.0.1:${c.port} hello`)
    await c.ask('again', port.getHost().port, `udp4 127.0.0.1:${c.port} again`)
    await s.finish()
  })

  test.serial(title("stopListening: the caller's fd still receives, sessions finish, then it resolves with the final figures"), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
    const port = s.r.listenDatagramProxy(fd, INET, { upstream: up.address, idleTimeout: 200 })
    const c = await s.client()
    await c.ask('before', port.getHost().port)
    t.is(port.ref(), port)
    t.is(port.unref(), port)
    const stopped = port.stopListening()
    const again = port.stopListening()
    const st = port.stats()
    t.is(st.sessionsActive, 1, 'the session goes on until its idle timeout')
    await within(Promise.all([stopped, again]), 'stopListening')
    const last = port.stats()
    t.is(last.sessionsExpired, 1)
    t.is(last.sessionsActive, 0)
    t.is(port.getHost().port, (sockets.info(fd).local as any).port, 'getHost() still answers')
    // Our fd still holds the socket: a datagram sent now waits there, for whoever reads it next.
    c.send('after', port.getHost().port)
    await waitUntil(() => up.received.length === 1 && port.stats().datagramsFromClients === 1, 'nothing more forwarded')
    sockets.close(fd)
    await port.stopListening()
    await s.finish()
  })

  test.serial(title('recvBufferSize / sendBufferSize: set on the listening socket and read back'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address, recvBufferSize: 1 << 20, sendBufferSize: 1 << 19 })
    const st = port.stats()
    // Linux keeps twice what it is given (the cap, net.core.rmem_max, does not bind root).
    t.true(st.recvBufferSize >= 1 << 20, `SO_RCVBUF ${st.recvBufferSize}`)
    t.true(st.sendBufferSize >= 1 << 19, `SO_SNDBUF ${st.sendBufferSize}`)
    await s.finish()
  })

  test.serial(title('reactor.close() ends a busy proxy and its sessions: no fd left'), async (t) => {
    const s = await setup(t, mode)
    const up = await s.upstream()
    const port = s.listen({ upstream: up.address, idleTimeout: Infinity })
    const clients = await Promise.all([0, 1, 2].map(() => s.client()))
    for (const [i, c] of clients.entries()) await c.ask(`c${i}`, port.getHost().port)
    t.is(port.stats().sessionsActive, 3)
    const stopped = port.stopListening() // never ends by itself: no idle timeout
    await s.finish()
    await within(stopped, 'stopListening after reactor.close()')
    t.is(port.stats().sessionsCreated, 3, 'the figures at the close')
  })
}
