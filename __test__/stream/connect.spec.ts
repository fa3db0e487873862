// reactor.connectTCP / connectUNIX: a non-blocking connect in the core; argument errors thrown
// synchronously with nothing opened; ConnectError codes; timeout, abort, bindAddress, name lookup.
// Both reactor modes.
import test from 'ava'
import * as net from 'node:net'
import { Reactor, ConnectError, InvalidAddressError, IPv4Address, IPv6Address, UNIXAddress, sockets } from 'reactor-socket'
import { MODES, Rec, EchoRec, RecFactory, fdList, fileTeardown, settleFds, tmpSockPath, within, closeFd } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

function echoServer(host = '127.0.0.1'): Promise<net.Server> {
  const server = net.createServer((s) => s.pipe(s))
  cleanups.push(() => server.close())
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)))
}

const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const fresh = () => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    return r
  }

  test(`${tag} connectTCP to an IP literal and to a name: protocol built with the peer, connectionMade, data both ways`, async (t) => {
    const r = fresh()
    const server = await echoServer()
    for (const host of ['127.0.0.1', 'localhost']) {
      const factory = new RecFactory(Rec)
      const p: any = await r.connectTCP(host, portOf(server), factory)
      t.true(p instanceof Rec)
      t.is(p.madeCount, 1)
      t.true(factory.addrs[0] instanceof IPv4Address || factory.addrs[0] instanceof IPv6Address)
      t.is(factory.addrs[0].port, portOf(server))
      t.is(factory.doStarts, 0, 'doStart is not called')
      p.t.write('ping')
      await p.waitText('ping')
      p.t.loseConnection()
      await p.waitLost()
    }
  })

  test(`${tag} connectTCP over IPv6 and with bindAddress`, async (t) => {
    const r = fresh()
    const server = await echoServer('::1')
    const seen = new Promise<net.Socket>((resolve) => server.once('connection', resolve))
    const p: any = await r.connectTCP('::1', portOf(server), new RecFactory(Rec), { bindAddress: ['::1', 0] })
    t.true(p.t.getPeer() instanceof IPv6Address)
    const s = await within(seen, 'server connection')
    t.is(s.remoteAddress, '::1')
    t.is(s.remotePort, p.t.getHost().port)
    p.t.abortConnection()
    await p.waitLost()
  })

  test(`${tag} connectUNIX, including an abstract name`, async (t) => {
    const r = fresh()
    for (const path of [tmpSockPath('c'), `\0reactor-socket-test-${process.pid}-${mode.name}`]) {
      // The listener is made with this package's helper (Node 20's net cannot bind an abstract name)
      // and adopted as a port whose protocol echoes.
      const fd = sockets.listenUnix(path)
      const port = r.adoptStreamPort(fd, 1, new RecFactory(EchoRec))
      closeFd(fd)
      const p: any = await r.connectUNIX(path, new RecFactory(Rec))
      t.true(p.t.getPeer() instanceof UNIXAddress)
      t.is(p.t.getPeer().name, path)
      p.t.write('unix')
      await p.waitText('unix')
      p.t.loseConnection()
      await p.waitLost()
      await port.stopListening()
    }
  })

  test.serial(`${tag} failures are ConnectError with Node's codes, and leave no fd`, async (t) => {
    const r = fresh()
    const server = await echoServer()
    await r.connectTCP('127.0.0.1', portOf(server), new RecFactory(Rec)).then((p: any) => p.t.abortConnection())
    const before = fdList()
    const closed = await echoServer()
    const port = portOf(closed)
    await new Promise((resolve) => closed.close(resolve))
    const refused = await t.throwsAsync(r.connectTCP('127.0.0.1', port, new RecFactory(Rec)), { instanceOf: ConnectError })
    t.is(refused!.code, 'ECONNREFUSED')
    t.is((refused as any).errno, -111)
    t.like(refused, { address: '127.0.0.1', port, syscall: 'connect' })
    t.is(refused!.message, `connect ECONNREFUSED 127.0.0.1:${port}: connection refused`)
    const missingPath = tmpSockPath('missing')
    const missing = await t.throwsAsync(r.connectUNIX(missingPath, new RecFactory(Rec)), { instanceOf: ConnectError })
    t.is(missing!.code, 'ENOENT')
    t.like(missing, { path: missingPath, address: missingPath, syscall: 'connect' })
    t.is(missing!.message, `connect ENOENT '${missingPath}': no such file or directory`)
    const lookup = await t.throwsAsync(r.connectTCP('no-such-host.invalid', 80, new RecFactory(Rec)), { instanceOf: ConnectError })
    t.is(lookup!.code, 'ENOTFOUND')
    t.like(lookup, { hostname: 'no-such-host.invalid', port: 80, syscall: 'getaddrinfo' })
    t.deepEqual(await settleFds(before), [], 'no fd left behind')
  })

  test.serial(`${tag} timeout → ETIMEDOUT and abort → the signal's reason; both close the socket`, async (t) => {
    const r = fresh()
    // A listener with a full accept queue drops further SYNs: the connect stays in progress.
    const listener = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 0 })
    cleanups.push(() => closeFd(listener))
    const port = (sockets.info(listener).local as any).port
    const fillers: net.Socket[] = []
    cleanups.push(() => fillers.forEach((s) => s.destroy()))
    for (let i = 0; i < 4; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => {}))
    await new Promise((resolve) => setTimeout(resolve, 100)) // let the fillers reach the queue (they are not what is tested)
    const server = await echoServer()
    await r.connectTCP('127.0.0.1', portOf(server), new RecFactory(Rec)).then((p: any) => p.t.abortConnection()) // the core is open
    const before = fdList()
    const timedOut = await t.throwsAsync(r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { timeout: 150 }), { instanceOf: ConnectError })
    t.is(timedOut!.code, 'ETIMEDOUT')
    t.like(timedOut, { address: '127.0.0.1', port, syscall: 'connect' })
    const ac = new AbortController()
    const pending = r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { signal: ac.signal })
    const reason = new Error('changed my mind')
    ac.abort(reason)
    t.is(await t.throwsAsync(pending), reason)
    const already = AbortSignal.abort(new Error('before'))
    t.is((await t.throwsAsync(r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { signal: already })))!.message, 'before')
    t.deepEqual(await settleFds(before), [], 'timed-out and aborted connects closed their sockets')
  })

  test.serial(`${tag} argument errors are thrown synchronously and open nothing`, (t) => {
    const r = fresh()
    const f = new RecFactory(Rec)
    const before = fdList()
    t.throws(() => r.connectTCP('127.0.0.1', 80, {} as any), { instanceOf: TypeError })
    t.throws(() => r.connectTCP(1 as any, 80, f), { instanceOf: TypeError })
    t.throws(() => r.connectTCP('127.0.0.1', '80' as any, f), { instanceOf: TypeError })
    t.throws(() => r.connectTCP('127.0.0.1', 65536, f), { instanceOf: RangeError })
    t.throws(() => r.connectTCP('127.0.0.1', -1, f), { instanceOf: RangeError })
    t.throws(() => r.connectTCP('127.0.0.1', 80, f, { timeout: '1' as any }), { instanceOf: TypeError })
    t.throws(() => r.connectTCP('127.0.0.1', 80, f, { signal: {} as any }), { instanceOf: TypeError })
    t.throws(() => r.connectTCP('127.0.0.1', 80, f, { bindAddress: '127.0.0.1' as any }), { instanceOf: TypeError })
    t.throws(() => r.connectTCP('127.0.0.1', 80, f, { bindAddress: ['localhost', 0] }), { instanceOf: InvalidAddressError })
    t.throws(() => r.connectUNIX(5 as any, f), { instanceOf: TypeError })
    // a Protocol class where a factory belongs: the message says what to pass instead
    const e = t.throws(() => r.connectTCP('127.0.0.1', 80, Rec as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
    t.is(e!.message, 'connectTCP: factory must have buildProtocol(); got the class Rec, a protocol — pass ServerFactory.forProtocol(Rec)')
    t.regex(t.throws(() => r.connectUNIX('/tmp/x.sock', null as any))!.message, /^connectUNIX: factory must have buildProtocol\(\); got null$/)
    t.deepEqual(fdList(), before)
  })

  test(`${tag} buildProtocol declining closes the connection and resolves undefined; a throw rejects`, async (t) => {
    const r = fresh()
    const server = await echoServer()
    const closedByUs = new Promise<void>((resolve) => server.once('connection', (s) => s.on('close', () => resolve())))
    const declining = new RecFactory(Rec)
    declining.decline = true
    t.is(await r.connectTCP('127.0.0.1', portOf(server), declining), undefined)
    await within(closedByUs, 'the declined connection closed')
    const boom = new Error('boom')
    await t.throwsAsync(r.connectTCP('127.0.0.1', portOf(server), { buildProtocol: () => { throw boom } }), { is: boom })
  })

  test(`${tag} reactor.close() rejects connects in progress`, async (t) => {
    const r = fresh()
    const listener = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 0 })
    cleanups.push(() => closeFd(listener))
    const port = (sockets.info(listener).local as any).port
    const fillers = [0, 1, 2, 3].map(() => net.connect(port, '127.0.0.1').on('error', () => {}))
    cleanups.push(() => fillers.forEach((s) => s.destroy()))
    await new Promise((resolve) => setTimeout(resolve, 100))
    const pending = r.connectTCP('127.0.0.1', port, new RecFactory(Rec))
    await r.close()
    t.is(((await t.throwsAsync(pending)) as any).code, 'ERR_REACTOR_CLOSED')
    t.throws(() => r.connectTCP('127.0.0.1', port, new RecFactory(Rec)), { code: 'ERR_REACTOR_CLOSED' } as any)
  })
}
