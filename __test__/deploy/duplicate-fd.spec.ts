// port.duplicateFd(): a new close-on-exec descriptor of a port's socket for the caller, as Go's
// Listener.File(), so that a port whose own fd was closed (the reactor keeps its duplicate) can
// still be handed on. Every kind of port that holds a socket (stream, proxy, datagram, datagram
// proxy), both reactor modes; a handoff of such a port to a real child process that serves it;
// EBADF after the stop; EMFILE in a child whose descriptors are used up.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import { handoff, sockets, AddressFamily, SocketType, ServerFactory, type Offer } from 'reactor-socket'
import {
  MODES,
  fixture,
  fileTeardown,
  reactorHarness,
  Child,
  RecFactory,
  DgramRec,
  listenTcp4,
  bindUdp4,
  closeFd,
  track,
  portOf,
  socketInode,
  isCloexec,
  nodeClient,
  udpPeer,
  sendUntil,
  tmpSockPath,
  within,
  limiter,
} from '../helpers.js'

const { cleanups } = fileTeardown()
const slot = limiter(2)
// The tests in this process compare the whole fd table at their end (reactorHarness): serial.

/** Checks that `dup` is a new descriptor (caller's, close-on-exec) of the very socket `inode`. */
function sameSocket(t: any, dup: number, inode: number, type: number, port: number) {
  t.true(Number.isInteger(dup) && dup > 2)
  t.is(socketInode(dup), inode, 'the same socket (same inode in /proc/self/fd)')
  t.true(isCloexec(dup), 'close-on-exec')
  const info = sockets.info(dup)
  t.is(info.type, type, 'same SO_TYPE')
  t.is((info.local as { port: number }).port, port, 'same getsockname')
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} ListeningPort.duplicateFd after the adopting fd was closed: the same listening socket, close-on-exec, the caller's; each call a new fd; EBADF after stopListening`, async (t) => {
    const { r, finish } = reactorHarness(t, mode)
    const fd = listenTcp4()
    const port = portOf(fd)
    const inode = socketInode(fd)
    const factory = new RecFactory()
    const listening = r.adoptStreamPort(fd, AddressFamily.INET, factory)
    closeFd(fd)
    const dup = track(listening.duplicateFd())
    sameSocket(t, dup, inode, SocketType.STREAM, port)
    t.true(sockets.info(dup).listening)
    const again = track(listening.duplicateFd())
    t.not(again, dup, 'every call makes a new descriptor')
    closeFd(again)
    // A connection made to the port is accepted by whoever accepts: the reactor, while it serves.
    const peer = await nodeClient(port)
    await factory.waitBuilt(1)
    peer.destroy()
    await listening.stopListening()
    const closed = t.throws(() => listening.duplicateFd(), { code: 'EBADF', message: 'duplicateFd: the port is closed' })
    t.is((closed as { errno?: number } | undefined)?.errno, -9)
    // The duplicate is the caller's: the socket still listens through it after the port stopped.
    const late = await nodeClient(port)
    t.is(sockets.info(dup).listening, true)
    late.destroy()
    closeFd(dup)
    await finish()
  })

  test.serial(`${tag} duplicateFd on a draining port still works (a successor can be given the socket while the old one drains); EBADF once the drain ended`, async (t) => {
    const { r, finish } = reactorHarness(t, mode)
    const fd = listenTcp4()
    const inode = socketInode(fd)
    const factory = new RecFactory()
    const listening = r.adoptStreamPort(fd, AddressFamily.INET, factory)
    const port = portOf(fd)
    closeFd(fd)
    // A connection keeps the drain going while the duplicate is made.
    const peer = await nodeClient(port)
    await factory.waitBuilt(1)
    const drained = listening.drain({ deadline: 10000 })
    const dup = track(listening.duplicateFd())
    sameSocket(t, dup, inode, SocketType.STREAM, port)
    closeFd(dup)
    peer.destroy()
    await within(drained, 'drain')
    t.like(t.throws(() => listening.duplicateFd()), { code: 'EBADF' })
    await finish()
  })

  test.serial(`${tag} ProxyPort.duplicateFd: the proxy's listening socket; EBADF after stopListening`, async (t) => {
    const { r, finish } = reactorHarness(t, mode)
    const upstream = listenTcp4()
    const fd = listenTcp4()
    const inode = socketInode(fd)
    const port = portOf(fd)
    const proxy = r.listenProxy(fd, AddressFamily.INET, { upstream: { host: '127.0.0.1', port: portOf(upstream) } })
    closeFd(fd)
    const dup = track(proxy.duplicateFd())
    sameSocket(t, dup, inode, SocketType.STREAM, port)
    t.true(sockets.info(dup).listening)
    closeFd(dup)
    await proxy.stopListening()
    t.like(t.throws(() => proxy.duplicateFd()), { code: 'EBADF' })
    closeFd(upstream)
    await finish()
  })

  test.serial(`${tag} DatagramPort.duplicateFd: the same UDP socket (a datagram to the port is received, either way); EBADF after stopListening`, async (t) => {
    const { r, finish } = reactorHarness(t, mode)
    const fd = bindUdp4()
    const inode = socketInode(fd)
    const port = portOf(fd)
    const proto = new DgramRec()
    const dgram = r.adoptDatagramPort(fd, AddressFamily.INET, proto)
    closeFd(fd)
    const dup = track(dgram.duplicateFd())
    sameSocket(t, dup, inode, SocketType.DGRAM, port)
    const u = await udpPeer('udp4')
    try {
      await sendUntil(() => void u.send('ping', port, '127.0.0.1'), () => proto.got.length > 0, 'a datagram at the port')
    } finally {
      u.close()
    }
    await dgram.stopListening()
    t.like(t.throws(() => dgram.duplicateFd()), { code: 'EBADF' })
    closeFd(dup)
    await finish()
  })

  test.serial(`${tag} DatagramProxyPort.duplicateFd: the listening UDP socket; EBADF once stopListening was called`, async (t) => {
    const { r, finish } = reactorHarness(t, mode)
    const fd = bindUdp4()
    const inode = socketInode(fd)
    const port = portOf(fd)
    const proxy = r.listenDatagramProxy(fd, AddressFamily.INET, { upstream: { host: '127.0.0.1', port: 9 } })
    closeFd(fd)
    const dup = track(proxy.duplicateFd())
    sameSocket(t, dup, inode, SocketType.DGRAM, port)
    closeFd(dup)
    const stopped = proxy.stopListening()
    t.like(t.throws(() => proxy.duplicateFd()), { code: 'EBADF' })
    await within(stopped, 'the datagram proxy stops')
    await finish()
  })

  test.serial(`${tag} duplicateFd after reactor.close() is EBADF`, async (t) => {
    const { r, finish } = reactorHarness(t, mode)
    const fd = listenTcp4()
    const listening = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
    closeFd(fd)
    await r.close()
    t.like(t.throws(() => listening.duplicateFd()), { code: 'EBADF' })
    await finish()
  })

  test.serial(`${tag} a port whose fd was closed is offered with duplicateFd, and a real child process takes it and serves it`, (t) => slot(async () => {
    const { r, finish } = reactorHarness(t, mode)
    const fd = listenTcp4()
    const port = portOf(fd)
    const inode = socketInode(fd)
    const listening = r.adoptStreamPort(fd, AddressFamily.INET, new RecFactory())
    closeFd(fd) // as every example does: the reactor keeps its own duplicate
    const path = tmpSockPath('dupoffer')
    const offered = listening.duplicateFd()
    let offer: Offer | null = handoff.offer(path, [{ name: 'web', fd: offered }])
    cleanups.push(() => offer?.close())
    sockets.close(offered) // the offer holds its own duplicate
    const child = new Child(spawn(process.execPath, [fixture('handoff-serve.mjs'), path, mode.name], { stdio: ['ignore', 'pipe', 'pipe'] }))
    cleanups.push(() => child.kill())
    const serving = JSON.parse(await child.line('SERVING '))
    await within(offer.taken, 'offer.taken')
    offer = null
    t.deepEqual(serving.listeners, [{ name: 'web', inode, port }], 'the child got the very socket')
    await listening.stopListening()
    // Only the child holds the socket now: these are its answers.
    for (let i = 0; i < 3; i++) {
      const peer = await nodeClient(port)
      peer.sock.write(`served ${i}`)
      await peer.waitText(`served ${i}`)
      peer.destroy()
    }
    child.proc.kill('SIGTERM')
    t.deepEqual(JSON.parse(await child.line('SERVED ')), { connections: 3 })
    const exit = await child.wait()
    t.is(exit.code, 0, exit.stderr)
    t.false(fs.existsSync(path))
    await finish()
  }))

  test(`${tag} duplicateFd with every descriptor in use is an Error with code EMFILE (a child under ulimit -n), and works again once one is free`, (t) => slot(async () => {
    const child = new Child(
      spawn('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"', process.execPath, fixture('duplicate-fd-emfile.mjs'), mode.name], { stdio: ['ignore', 'pipe', 'pipe'] }),
    )
    cleanups.push(() => child.kill())
    const result = JSON.parse(await child.line('RESULT '))
    t.deepEqual(result, { full: { code: 'EMFILE', errno: -24, isError: true }, freed: { listening: true, port: true } })
    t.is((await child.wait()).code, 0)
  }))
}
