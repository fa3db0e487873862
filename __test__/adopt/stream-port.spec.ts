// docs/adopting.md "adoptStreamPort" and the ownership rules of the adopt calls: adoptStreamPort, accepting,
// buildProtocol, stopListening, the caller's fd. Every test runs in both reactor modes.
import test from 'ava'
import * as fs from 'node:fs'
import {
  reactor,
  Reactor,
  AddressFamily,
  Protocol,
  ConnectionDone,
  IPv4Address,
  IPv6Address,
  UNIXAddress,
  sockets,
} from 'reactor-socket'
import {
  MODES,
  PAIR_KINDS,
  RecFactory,
  EchoRec,
  listenerOf,
  listenTcp4,
  listenUnixFd,
  nodeClient,
  rawClient,
  wrapFd,
  track,
  portOf,
  closeFd,
  closeTracked,
  within,
  waitUntil,
  drainCurrentTurn,
  socketOptions,
  listenBacklog,
  linkOf,
  fdsWithLink,
  isCloexec,
  Peer,
  HAS_PYTHON,
  HAS_SS,
  testIf,
} from '../helpers.js'

const reactors: any[] = []
const peers: Peer[] = []
test.after.always(async () => {
  for (const p of peers) p.destroy()
  for (const r of reactors) await r.close()
  closeTracked()
})

async function client(connect: () => Promise<Peer>) {
  const p = await connect()
  peers.push(p)
  return p
}

test('the default reactor is a Reactor and adopts a port', async (t) => {
  t.true(reactor instanceof Reactor)
  const fd = listenTcp4()
  const f = new RecFactory()
  const port = reactor.adoptStreamPort(fd, AddressFamily.INET, f)
  const peer = await client(() => nodeClient(portOf(fd)))
  peer.sock.write('default')
  await peer.waitText('default')
  await within(port.stopListening(), 'stopListening')
  peer.destroy()
  await within(f.built[0].waitLost(), 'connectionLost')
})

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const kind of PAIR_KINDS) {
    test(`${tag} ${kind}: echo through an adopted port; buildProtocol gets the peer address; getHost`, async (t) => {
      const l = listenerOf(kind)
      const f = new RecFactory()
      const port = r.adoptStreamPort(l.fd, l.family, f)
      t.is(f.doStarts, 1, 'doStart ran synchronously inside adoptStreamPort')
      t.is(f.starts, 1, 'startFactory ran synchronously inside adoptStreamPort')
      const peer = await client(l.connect)
      peer.sock.write('hello ' + kind)
      await peer.waitText('hello ' + kind)
      t.is(f.built.length, 1)
      t.is(f.built[0].factory, f, 'default buildProtocol sets p.factory')
      t.is(f.built[0].madeCount, 1)
      const addr = f.addrs[0]
      const host: any = port.getHost()
      if (kind === 'v4') {
        t.true(addr instanceof IPv4Address)
        t.is(addr.type, 'TCP')
        t.is(addr.host, '127.0.0.1')
        t.is(addr.port, peer.sock.localPort)
        t.true(host instanceof IPv4Address)
        t.like(host, { type: 'TCP', host: '127.0.0.1', port: portOf(l.fd) })
      } else if (kind === 'v6') {
        t.true(addr instanceof IPv6Address)
        t.like(addr, { type: 'TCP', host: '::1', port: peer.sock.localPort, flowInfo: 0, scopeID: 0 })
        t.true(host instanceof IPv6Address)
        t.like(host, { type: 'TCP', host: '::1', port: portOf(l.fd), flowInfo: 0, scopeID: 0 })
      } else {
        t.true(addr instanceof UNIXAddress)
        t.is(addr.name, null, 'a Node client socket is unnamed')
        t.true(host instanceof UNIXAddress)
        t.is(host.name, l.path)
      }
      peer.sock.end()
      const reason = await within(f.built[0].waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionDone)
      await within(port.stopListening(), 'stopListening')
    })
  }

  test(`${tag} doStart/doStop count ports: startFactory on 0→1, stopFactory on 1→0`, async (t) => {
    const f = new RecFactory()
    const p1 = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, f)
    t.is(f.doStarts, 1)
    t.is(f.starts, 1)
    const p2 = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, f)
    t.is(f.doStarts, 2)
    t.is(f.starts, 1, 'startFactory only on the first port')
    await within(p1.stopListening(), 'stopListening 1')
    t.is(f.doStops, 1)
    t.is(f.stops, 0, 'stopFactory waits for the last port')
    await within(p2.stopListening(), 'stopListening 2')
    t.is(f.doStops, 2)
    t.is(f.stops, 1)
    await within(p2.stopListening(), 'stopListening again')
    t.is(f.doStops, 2, 'a second stopListening does not call doStop again')
  })

  test(`${tag} buildProtocol returning null/undefined closes that client only; the port keeps accepting`, async (t) => {
    const fd = listenTcp4()
    let n = 0
    const built: any[] = []
    // any object with buildProtocol is a factory; doStart/doStop optional
    const factory = {
      buildProtocol(_addr: any) {
        n++
        if (n === 1) return null
        if (n === 2) return undefined
        const p = new EchoRec()
        built.push(p)
        return p
      },
    }
    const port = r.adoptStreamPort(fd, AddressFamily.INET, factory)
    const c1 = rawClient(portOf(fd))
    peers.push(c1)
    await c1.waitClose()
    t.is(c1.data.length, 0)
    t.true(c1.ended, 'declined client sees a clean close')
    const c2 = rawClient(portOf(fd))
    peers.push(c2)
    await c2.waitClose()
    t.true(c2.ended)
    const c3 = await client(() => nodeClient(portOf(fd)))
    c3.sock.write('third')
    await c3.waitText('third')
    t.is(n, 3)
    t.is(built.length, 1)
    c3.destroy()
    await within(built[0].waitLost(), 'connectionLost')
    await within(port.stopListening(), 'stopListening')
  })

  test(`${tag} adoption duplicates the fd (close-on-exec) and sets O_NONBLOCK on the shared socket`, async (t) => {
    const fd = listenTcp4()
    const link = linkOf(fd)
    t.deepEqual(fdsWithLink(link), [fd])
    const port = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
    const fds = fdsWithLink(link)
    t.is(fds.length, 2, 'the reactor holds its own duplicate')
    const dup = fds.find((x) => x !== fd)!
    t.true(isCloexec(dup), 'the duplicate is close-on-exec')
    t.true(sockets.info(fd).nonBlocking, "O_NONBLOCK is visible on the caller's fd")
    await within(port.stopListening(), 'stopListening')
    t.deepEqual(fdsWithLink(link), [fd], 'the duplicate is closed by stopListening')
  })

  test(`${tag} stopListening settles on a later turn, after doStop/stopFactory and the duplicate closed; every call resolves`, async (t) => {
    const fd = listenTcp4()
    const link = linkOf(fd)
    const f = new RecFactory()
    const port = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const hostBefore = port.getHost()
    let settled = false
    let atSettle: any
    const p = port.stopListening()
    t.true(p instanceof Promise)
    p.then(() => {
      settled = true
      atSettle = { doStops: f.doStops, stops: f.stops, fds: fdsWithLink(link).length }
    })
    await drainCurrentTurn()
    t.false(settled, 'not settled within the current macrotask (microtasks and nextTicks drained)')
    await within(p, 'stopListening')
    t.true(settled)
    t.deepEqual(atSettle, { doStops: 1, stops: 1, fds: 1 })
    // the second call resolves, and so do concurrent calls
    await within(port.stopListening(), 'second stopListening')
    await within(Promise.all([port.stopListening(), port.stopListening()]), 'concurrent stopListening')
    t.deepEqual(port.getHost(), hostBefore, 'getHost still answers after the stop')
    t.is(f.doStops, 1)
    t.is(f.stops, 1)
  })

  test(`${tag} concurrent first stopListening calls both resolve`, async (t) => {
    const f = new RecFactory()
    const port = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, f)
    await within(Promise.all([port.stopListening(), port.stopListening()]), 'both stopListening')
    t.is(f.doStops, 1)
    t.is(f.stops, 1)
  })

  test(`${tag} accepted connections stay open after stopListening`, async (t) => {
    const fd = listenTcp4()
    const f = new RecFactory()
    const port = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const peer = await client(() => nodeClient(portOf(fd)))
    peer.sock.write('one')
    await peer.waitText('one')
    await within(port.stopListening(), 'stopListening')
    peer.sock.write('two')
    await peer.waitText('onetwo')
    t.deepEqual(f.built[0].lostReasons, [])
    t.true(f.built[0].t.connected)
    peer.sock.end()
    t.true((await within(f.built[0].waitLost(), 'lost')) instanceof ConnectionDone)
  })

  test(`${tag} stopListening leaves the caller's fd listening: a later client is accepted by a second adoption`, async (t) => {
    const fd = listenTcp4()
    const infoBefore = sockets.info(fd)
    const f1 = new RecFactory()
    const port1 = r.adoptStreamPort(fd, AddressFamily.INET, f1)
    await within(port1.stopListening(), 'stopListening')
    const info = sockets.info(fd)
    t.true(info.listening, 'still listening')
    t.deepEqual(info.local, infoBefore.local, 'same address')
    const peer = await client(() => nodeClient(portOf(fd))) // completes into the kernel's backlog
    const f2 = new RecFactory()
    const port2 = r.adoptStreamPort(fd, AddressFamily.INET, f2)
    peer.sock.write('second adoption')
    await peer.waitText('second adoption')
    t.is(f1.built.length, 0, 'the stopped port accepted nothing')
    t.is(f2.built.length, 1)
    peer.destroy()
    await within(f2.built[0].waitLost(), 'lost')
    await within(port2.stopListening(), 'stopListening 2')
  })

  test(`${tag} stopListening right after clients connected: each is served by the port or left in the caller's backlog, none closed unserved`, async (t) => {
    const fd = listenTcp4({ backlog: 64 })
    const f1 = new RecFactory()
    const lp1 = r.adoptStreamPort(fd, AddressFamily.INET, f1)
    // connected by the kernel, in this same macrotask: the core may already be accepting them
    const clients = Array.from({ length: 24 }, () => rawClient(portOf(fd)))
    peers.push(...clients)
    const stopped = lp1.stopListening()
    await within(stopped, 'stopListening')
    // whatever the first port did not take is still in the caller's backlog: a second adoption serves it
    const f2 = new RecFactory()
    const lp2 = r.adoptStreamPort(fd, AddressFamily.INET, f2)
    clients.forEach((c, i) => c.sock.write(`c${i};`))
    await Promise.all(
      clients.map((c, i) =>
        waitUntil(() => c.text === `c${i};` || c.closed, () => `client ${i} served or closed`),
      ),
    )
    const closedUnserved = clients.filter((c, i) => c.text !== `c${i};`).length
    t.log(`first port built ${f1.built.length}, second port built ${f2.built.length}`)
    t.is(closedUnserved, 0, 'clients accepted before the stop stay open; the others wait in the backlog')
    t.is(f1.built.length + f2.built.length, clients.length)
    clients.forEach((c) => c.destroy())
    await within(lp2.stopListening(), 'stop 2')
  })

  test(`${tag} the caller may close its fd right after adopting; the port still accepts`, async (t) => {
    const fd = listenTcp4()
    const port = portOf(fd)
    const f = new RecFactory()
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    closeFd(fd)
    const peer = await client(() => nodeClient(port))
    peer.sock.write('still here')
    await peer.waitText('still here')
    t.like(lp.getHost(), { host: '127.0.0.1', port })
    await within(lp.stopListening(), 'stopListening')
    // the reactor's duplicate was the last reference: the socket is gone now
    await t.throwsAsync(nodeClient(port), { code: 'ECONNREFUSED' })
    peer.destroy()
  })

  test(`${tag} no second listen(): the address and listening state are unchanged`, async (t) => {
    const fd = listenTcp4({ backlog: 7 })
    const port = portOf(fd)
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
    await within(lp.stopListening(), 'stopListening')
    const info = sockets.info(fd)
    t.true(info.listening)
    t.like(info.local, { host: '127.0.0.1', port })
  })

  testIf(HAS_SS, 'ss not found')(`${tag} no second listen(): the backlog is unchanged, TCP and UNIX (as ss reports it)`, async (t) => {
    const fd = listenTcp4({ backlog: 7 })
    const backlog = () => listenBacklog({ port: portOf(fd) })
    t.is(await backlog(), 7)
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
    t.is(await backlog(), 7, 'the adopted socket keeps its backlog')
    await within(lp.stopListening(), 'stopListening')
    t.is(await backlog(), 7)
    const unix = listenUnixFd()
    const unixBefore = await listenBacklog({ path: unix.path })
    const up = r.adoptStreamPort(unix.fd, AddressFamily.UNIX, new RecFactory())
    await within(up.stopListening(), 'stopListening (UNIX)')
    t.is(await listenBacklog({ path: unix.path }), unixBefore, 'no second listen()')
    closeFd(unix.fd)
    fs.unlinkSync(unix.path)
  })

  testIf(HAS_PYTHON, 'python3 not found')(`${tag} adoption and stopListening change no socket option (no SO_REUSEADDR, same buffers)`, async (t) => {
    const fd = listenTcp4()
    const before = await socketOptions(fd)
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
    t.deepEqual(await socketOptions(fd), before)
    await within(lp.stopListening(), 'stop')
    t.deepEqual(await socketOptions(fd), before)
  })

  test(`${tag} a plain factory object: doStart/doStop called when present`, async (t) => {
    const calls: string[] = []
    const factory = {
      doStart() {
        calls.push('doStart')
      },
      doStop() {
        calls.push('doStop')
      },
      buildProtocol() {
        calls.push('build')
        return new EchoRec()
      },
    }
    const fd = listenTcp4()
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, factory)
    t.deepEqual(calls, ['doStart'])
    const c = await client(() => nodeClient(portOf(fd)))
    c.sock.write('plain')
    await c.waitText('plain')
    await within(lp.stopListening(), 'stop')
    t.deepEqual(calls, ['doStart', 'build', 'doStop'])
    c.destroy()
  })

  test(`${tag} UNIX port: the path is neither unlinked nor chmodded, by adoption or by stopListening`, async (t) => {
    const { fd, path } = listenUnixFd()
    fs.chmodSync(path, 0o640)
    const statBefore = fs.statSync(path)
    const f = new RecFactory()
    const lp = r.adoptStreamPort(fd, AddressFamily.UNIX, f)
    t.is(fs.statSync(path).mode, statBefore.mode)
    const c1 = await client(() => nodeClient(path))
    c1.sock.write('u')
    await c1.waitText('u')
    await within(lp.stopListening(), 'stopListening')
    t.true(fs.existsSync(path), 'not unlinked')
    const st = fs.statSync(path)
    t.is(st.mode, statBefore.mode, 'not chmodded')
    t.is(st.ino, statBefore.ino)
    t.true(sockets.info(fd).listening)
    const host: any = lp.getHost()
    t.true(host instanceof UNIXAddress)
    t.is(host.name, path, 'getHost after stop')
    c1.destroy()
    closeFd(fd)
    t.true(fs.existsSync(path), 'closing never unlinks')
    fs.unlinkSync(path)
  })

  test(`${tag} many concurrent clients are all served`, async (t) => {
    const fd = listenTcp4()
    const f = new RecFactory()
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const clients = await Promise.all(Array.from({ length: 20 }, () => client(() => nodeClient(portOf(fd)))))
    clients.forEach((c, i) => c.sock.write(`client-${i};`))
    await Promise.all(clients.map((c, i) => c.waitText(`client-${i};`)))
    t.is(f.built.length, 20)
    clients.forEach((c) => c.sock.end())
    await waitUntil(() => f.built.every((p: any) => p.lostReasons.length === 1), 'all lost')
    t.true(f.built.every((p: any) => p.reason instanceof ConnectionDone))
    await within(lp.stopListening(), 'stopListening')
  })

  test(`${tag} a burst of 2000 connections, each with data queued before JS looks, is served completely`, async (t) => {
    const fd = listenTcp4({ backlog: 4096 })
    const f = new RecFactory()
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const N = 2000
    const raw: number[] = []
    // all in one macrotask: the events pile up into large batches
    for (let i = 0; i < N; i++) {
      const c = track(sockets.connectTcp('127.0.0.1', portOf(fd)))
      fs.writeSync(c, `m${i};`)
      raw.push(c)
    }
    const clients = raw.map((c) => wrapFd(c))
    peers.push(...clients)
    await Promise.all(clients.map((c, i) => c.waitText(`m${i};`, 20000)))
    t.is(f.built.length, N)
    clients.forEach((c) => c.destroy())
    await waitUntil(() => f.built.every((p: any) => p.lostReasons.length === 1), 'all lost', 20000)
    await within(lp.stopListening(), 'stop')
  })

  test(`${tag} ListeningPort ref()/unref() return the port`, async (t) => {
    const lp = r.adoptStreamPort(listenTcp4(), AddressFamily.INET, new RecFactory())
    t.is(lp.unref(), lp)
    t.is(lp.ref(), lp)
    await within(lp.stopListening(), 'stopListening')
  })

  test(`${tag} a plain Protocol subclass through ServerFactory's default buildProtocol`, async (t) => {
    class Upper extends Protocol {
      dataReceived(d: Buffer) {
        ;(this as any).transport.write(d.toString().toUpperCase())
      }
    }
    const f = new RecFactory(Upper)
    const fd = listenTcp4()
    const lp = r.adoptStreamPort(fd, AddressFamily.INET, f)
    const peer = await client(() => nodeClient(portOf(fd)))
    peer.sock.write('shout')
    await peer.waitText('SHOUT')
    t.true(f.built[0] instanceof Upper)
    t.is(f.built[0].factory, f)
    peer.destroy()
    await within(lp.stopListening(), 'stopListening')
  })
}

