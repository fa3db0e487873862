// docs/adopting.md "`sockets`: making and inspecting fds": listenTcp, bindUdp,
// listenUnix, connectTcp, socketPair, close, info; errors carry code and errno.
import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { sockets, SocketType, AddressFamily, IPv4Address, IPv6Address, UNIXAddress } from 'reactor-socket'
import {
  track,
  closeFd,
  closeTracked,
  portOf,
  tmpSockPath,
  nodeClient,
  within,
  closedFd,
  listenBacklog,
  HAS_SS,
  testIf,
} from '../helpers.js'

test.after.always(() => closeTracked())

function checkInfoShape(t: any, info: any) {
  t.deepEqual(Object.keys(info).sort(), ['family', 'listening', 'local', 'nonBlocking', 'peer', 'type'])
  t.is(typeof info.family, 'number')
  t.is(typeof info.type, 'number')
  t.is(typeof info.listening, 'boolean')
  t.is(typeof info.nonBlocking, 'boolean')
}

test('listenTcp v4: a listening stream socket with a port', (t) => {
  const fd = track(sockets.listenTcp({ host: '127.0.0.1', port: 0 }))
  t.true(Number.isInteger(fd) && fd > 2)
  const info = sockets.info(fd)
  checkInfoShape(t, info)
  t.is(info.family, AddressFamily.INET)
  t.is(info.type, SocketType.STREAM)
  t.true(info.listening)
  t.false(info.nonBlocking, 'a fresh helper fd is blocking (adoption is what sets O_NONBLOCK)')
  t.true(info.local instanceof IPv4Address)
  t.like(info.local, { host: '127.0.0.1' })
  t.true((info.local as any).port > 0)
  t.is(info.peer, null)
})

test('listenTcp v6 (ipv6Only) and a connection to it', async (t) => {
  const fd = track(sockets.listenTcp({ host: '::1', port: 0, ipv6Only: true, backlog: 16 }))
  const info = sockets.info(fd)
  t.is(info.family, AddressFamily.INET6)
  t.true(info.listening)
  t.true(info.local instanceof IPv6Address)
  // the kernel queues a connection on the listening fd
  const c = await nodeClient(portOf(fd), '::1')
  t.is(c.sock.remotePort, portOf(fd))
  c.destroy()
})

test('listenTcp: reusePort lets two sockets share a port; without it → EADDRINUSE with code and errno', (t) => {
  const a = track(sockets.listenTcp({ host: '127.0.0.1', port: 0, reusePort: true }))
  const port = portOf(a)
  const b = track(sockets.listenTcp({ host: '127.0.0.1', port, reusePort: true }))
  t.is(portOf(b), port)
  const e = t.throws(() => sockets.listenTcp({ host: '127.0.0.1', port }), { code: 'EADDRINUSE' })
  t.is((e as any).errno, -98, "errno is negative, as in Node (libuv)")
})

test('bindUdp v4 and v6: bound datagram sockets, not listening, no peer', (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const fd = track(sockets.bindUdp({ host, port: 0 }))
    const info = sockets.info(fd)
    checkInfoShape(t, info)
    t.is(info.family, host === '::1' ? AddressFamily.INET6 : AddressFamily.INET)
    t.is(info.type, SocketType.DGRAM)
    t.false(info.listening)
    t.is(info.peer, null)
    t.like(info.local, { host })
    t.true((info.local as any).port > 0)
  }
  const a = track(sockets.bindUdp({ host: '127.0.0.1', port: 0, reusePort: true }))
  const b = track(sockets.bindUdp({ host: '127.0.0.1', port: portOf(a), reusePort: true }))
  t.is(portOf(a), portOf(b))
})

test('listenUnix: a listening UNIX stream socket at the path; errors carry code', async (t) => {
  const p = tmpSockPath('sockets')
  const fd = track(sockets.listenUnix(p, 8))
  const info = sockets.info(fd)
  t.is(info.family, AddressFamily.UNIX)
  t.is(info.type, SocketType.STREAM)
  t.true(info.listening)
  t.true(info.local instanceof UNIXAddress)
  t.is((info.local as any).name, p)
  t.true(fs.existsSync(p))
  const c = await nodeClient(p)
  c.destroy()
  t.throws(() => sockets.listenUnix(p), { code: 'EADDRINUSE' })
  const e = t.throws(() => sockets.listenUnix(path.join(os.tmpdir(), 'no-such-dir-rs', 'x.sock')), {
    code: 'ENOENT',
  })
  t.is((e as any).errno, -2, "errno is negative, as in Node (libuv)")
  closeFd(fd)
  t.true(fs.existsSync(p), 'closing does not unlink')
  fs.unlinkSync(p)
})

test('connectTcp: a connected (blocking) client fd; refused → ECONNREFUSED', async (t) => {
  const server = net.createServer()
  await within(new Promise<void>((r) => server.listen(0, '127.0.0.1', r)), 'listen')
  const port = (server.address() as net.AddressInfo).port
  const fd = track(sockets.connectTcp('127.0.0.1', port))
  const info = sockets.info(fd)
  t.is(info.family, AddressFamily.INET)
  t.is(info.type, SocketType.STREAM)
  t.false(info.listening)
  t.like(info.peer, { host: '127.0.0.1', port })
  t.true(info.peer instanceof IPv4Address)
  closeFd(fd)
  server.close()
  const dead = track(sockets.listenTcp({ host: '127.0.0.1', port: 0 }))
  const deadPort = portOf(dead)
  closeFd(dead)
  const e = t.throws(() => sockets.connectTcp('127.0.0.1', deadPort), { code: 'ECONNREFUSED' })
  t.is((e as any).errno, -111, "errno is negative, as in Node (libuv)")
})

test('socketPair: two connected AF_UNIX stream fds', (t) => {
  const pair = sockets.socketPair()
  t.true(Array.isArray(pair))
  t.is(pair.length, 2)
  const [a, b] = pair.map(track)
  t.not(a, b)
  for (const fd of [a, b]) {
    const info = sockets.info(fd)
    t.is(info.family, AddressFamily.UNIX)
    t.is(info.type, SocketType.STREAM)
    t.false(info.listening)
  }
  fs.writeSync(a, 'ping')
  const buf = Buffer.alloc(4)
  t.is(fs.readSync(b, buf, 0, 4, null), 4)
  t.is(buf.toString(), 'ping')
})

test('close(fd) closes; closing or inspecting a closed fd → EBADF; a non-socket → ENOTSOCK; each error names the fd', (t) => {
  const fd = track(sockets.listenTcp({ host: '127.0.0.1', port: 0 }))
  closeFd(fd)
  t.throws(() => sockets.info(fd), { code: 'EBADF' })
  const closed = closedFd()
  const e = t.throws(() => sockets.close(closed), { code: 'EBADF' })
  t.is((e as any).errno, -9, "errno is negative, as in Node (libuv)")
  t.like(e, { fd: closed, syscall: 'close', message: `EBADF: bad file descriptor, close fd ${closed}` })
  const devnull = fs.openSync('/dev/null', 'r')
  try {
    const e2 = t.throws(() => sockets.info(devnull), { code: 'ENOTSOCK' })
    t.is((e2 as any).errno, -88, "errno is negative, as in Node (libuv)")
    t.like(e2, { fd: devnull, message: `ENOTSOCK: socket operation on non-socket, info fd ${devnull}` })
    const e3 = t.throws(() => sockets.getOption(devnull, 'SO_RCVBUF'), { code: 'ENOTSOCK' })
    t.like(e3, { fd: devnull, message: `ENOTSOCK: socket operation on non-socket, getsockopt fd ${devnull} (SO_RCVBUF)` })
  } finally {
    fs.closeSync(devnull)
  }
})

test('SocketType and AddressFamily hold the platform numbers', (t) => {
  t.is(SocketType.STREAM, 1)
  t.is(SocketType.DGRAM, 2)
  t.is(SocketType.SEQPACKET, 5)
  t.is(SocketType.RAW, 3)
  t.deepEqual([AddressFamily.INET, AddressFamily.INET6, AddressFamily.UNIX], [2, 10, 1])
})

test('helpers throw an Error with a code on bad input', (t) => {
  const coded = (fn: () => unknown) => {
    const e = t.throws(fn) as any
    t.true(e instanceof Error)
    t.is(typeof e?.code, 'string', `code: ${e?.code} (${e?.message})`)
  }
  coded(() => track(sockets.listenTcp({ host: 'not-an-ip', port: 0 })))
  coded(() => track(sockets.bindUdp({ host: 'not-an-ip', port: 0 })))
  coded(() => track(sockets.connectTcp('not-an-ip', 80)))
  coded(() => track(sockets.listenTcp({ host: '192.0.2.254', port: 0 }))) // not a local address: EADDRNOTAVAIL
})

// Errors say where, as Node's do ("listen EADDRINUSE: address already in use 127.0.0.1:8080"):
// the address and port, or the path, in the message and as properties, with `syscall`.

test('listenTcp / bindUdp / connectTcp errors carry the address and port (message and properties) and syscall', (t) => {
  for (const host of ['127.0.0.1', '::1']) {
    const shown = host.includes(':') ? `[${host}]` : host
    const a = track(sockets.listenTcp({ host, port: 0 }))
    const port = portOf(a)
    const e: any = t.throws(() => sockets.listenTcp({ host, port }), { code: 'EADDRINUSE' })
    t.is(e.message, `EADDRINUSE: address already in use, listenTcp ${shown}:${port}`)
    t.like(e, { address: host, port, syscall: 'listenTcp', errno: -98 })
    t.false('path' in e)

    const u = track(sockets.bindUdp({ host, port: 0 }))
    const udpPort = portOf(u)
    const eu: any = t.throws(() => sockets.bindUdp({ host, port: udpPort }), { code: 'EADDRINUSE' })
    t.is(eu.message, `EADDRINUSE: address already in use, bindUdp ${shown}:${udpPort}`)
    t.like(eu, { address: host, port: udpPort, syscall: 'bindUdp' })

    closeFd(a)
    const ec: any = t.throws(() => sockets.connectTcp(host, port), { code: 'ECONNREFUSED' })
    t.is(ec.message, `ECONNREFUSED: connection refused, connectTcp ${shown}:${port}`)
    t.like(ec, { address: host, port, syscall: 'connectTcp', errno: -111 })
  }
  // an address that is not this machine's
  const ea: any = t.throws(() => track(sockets.listenTcp({ host: '192.0.2.254', port: 0 })), { code: 'EADDRNOTAVAIL' })
  t.regex(ea.message, / 192\.0\.2\.254:0$/)
  t.like(ea, { address: '192.0.2.254', port: 0 })
})

test('listenUnix errors carry the path (message and property) and syscall', (t) => {
  const p = tmpSockPath('where')
  const fd = track(sockets.listenUnix(p))
  const e: any = t.throws(() => sockets.listenUnix(p), { code: 'EADDRINUSE' })
  t.is(e.message, `EADDRINUSE: address already in use, listenUnix '${p}'`)
  t.like(e, { path: p, syscall: 'listenUnix' })
  t.false('address' in e)
  const missing = path.join(os.tmpdir(), 'no-such-dir-rs', 'x.sock')
  const en: any = t.throws(() => sockets.listenUnix(missing), { code: 'ENOENT' })
  t.is(en.message, `ENOENT: no such file or directory, listenUnix '${missing}'`)
  t.is(en.path, missing)
  // an abstract name is shown with '@' for its leading NUL; the property keeps the name as given
  const name = `\0reactor-socket-where-${process.pid}`
  const abstract = track(sockets.listenUnix(name))
  const ea: any = t.throws(() => sockets.listenUnix(name), { code: 'EADDRINUSE' })
  t.true(ea.message.endsWith(`listenUnix '@${name.slice(1)}'`), ea.message)
  t.is(ea.path, name)
  // a path too long for sun_path is refused before the kernel sees it, and says which
  const long = path.join(os.tmpdir(), 'x'.repeat(120))
  const el: any = t.throws(() => sockets.listenUnix(long), { code: 'ENAMETOOLONG' })
  t.is(el.path, long)
  t.true(el.message.includes(long), el.message)
  closeFd(fd)
  closeFd(abstract)
  fs.unlinkSync(p)
})

testIf(HAS_SS, 'ss not found')('listen backlogs: 511 by default, the given one otherwise (as ss reports them)', async (t) => {
  const a = track(sockets.listenTcp({ host: '127.0.0.1', port: 0 }))
  const b = track(sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 9 }))
  const pa = tmpSockPath('bl')
  const pb = tmpSockPath('bl')
  track(sockets.listenUnix(pa))
  track(sockets.listenUnix(pb, 9))
  const got = [
    await listenBacklog({ port: portOf(a) }),
    await listenBacklog({ port: portOf(b) }),
    await listenBacklog({ path: pa }),
    await listenBacklog({ path: pb }),
  ]
  t.deepEqual(got, [511, 9, 511, 9])
  fs.unlinkSync(pa)
  fs.unlinkSync(pb)
})
