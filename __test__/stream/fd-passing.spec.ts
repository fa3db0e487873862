// Descriptor passing on UNIX stream connections (Twisted's IUNIXTransport): sendFileDescriptor
// sends a duplicate with the next write's first byte; fileDescriptorReceived gets each received
// descriptor before the data it came with; without it they are closed. Both reactor modes.
import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { Reactor, sockets, AddressFamily } from 'reactor-socket'
import { MODES, Rec, RecFactory, adoptablePair, closeFd, fdList, fileTeardown, isCloexec, settleFds, waitUntil, type PairKind } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

class FdRec extends Rec {
  fds: number[] = []
  order: string[] = []
  fileDescriptorReceived(fd: number) {
    this.fds.push(fd)
    this.order.push(`fd`)
  }
  dataReceived(d: Buffer) {
    this.order.push(`data:${d.toString()}`)
    super.dataReceived(d)
  }
}

/** Two adopted ends of one socketpair, each with its protocol. */
function pair(r: Reactor, P: typeof Rec = FdRec): [any, any] {
  const [a, b] = sockets.socketPair()
  const pa = r.adoptStreamConnection(a, AddressFamily.UNIX, new RecFactory(P))
  const pb = r.adoptStreamConnection(b, AddressFamily.UNIX, new RecFactory(P))
  closeFd(a)
  closeFd(b)
  return [pa, pb]
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)

  test.serial(`${tag} a descriptor sent with a write arrives before that data, close-on-exec, and works`, async (t) => {
    const [a, b] = pair(r)
    const file = `/tmp/reactor-socket-fdpass-${process.pid}-${mode.name}`
    fs.writeFileSync(file, 'contents of the passed file')
    cleanups.push(() => fs.rmSync(file, { force: true }))
    const fd = fs.openSync(file, 'r')
    a.t.sendFileDescriptor(fd)
    fs.closeSync(fd) // the caller may close its own at once
    a.t.write('x')
    await waitUntil(() => b.fds.length === 1 && b.data.length === 1, 'descriptor and byte')
    t.deepEqual(b.order, ['fd', 'data:x'])
    t.true(isCloexec(b.fds[0]))
    t.is(fs.readFileSync(b.fds[0] as any, 'utf8'), 'contents of the passed file')
    fs.closeSync(b.fds[0])
    a.t.loseConnection()
    await b.waitLost()
  })

  test.serial(`${tag} without fileDescriptorReceived, received descriptors are closed; nothing leaks`, async (t) => {
    const [a, b] = pair(r, Rec)
    await new Promise((resolve) => setImmediate(resolve))
    const before = fdList()
    const [x, y] = sockets.socketPair()
    for (let i = 0; i < 10; i++) a.t.sendFileDescriptor(x)
    a.t.write('with ten')
    await waitUntil(() => b.data.length === 8, 'the byte')
    sockets.close(x)
    sockets.close(y)
    t.deepEqual(await settleFds(before), [], 'the ten received duplicates were closed')
    a.t.loseConnection()
    await b.waitLost()
  })

  test(`${tag} bad input: TCP → ENOTSUP, a closed fd → EBADF, not an integer → TypeError`, async (t) => {
    const x = await adoptablePair('v4' as PairKind)
    cleanups.push(x.cleanup)
    const p: any = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Rec))
    closeFd(x.fd)
    t.throws(() => p.t.sendFileDescriptor(0), { code: 'ENOTSUP' } as any)
    const [a] = pair(r)
    const [c, d] = sockets.socketPair()
    sockets.close(c)
    sockets.close(d)
    t.throws(() => a.t.sendFileDescriptor(c), { code: 'EBADF' } as any)
    t.throws(() => a.t.sendFileDescriptor('1' as any), { instanceOf: TypeError })
    p.t.abortConnection()
    a.t.abortConnection()
  })

  test(`${tag} two descriptors with one write arrive in order, and the received ends are a working pair`, async (t) => {
    const [a, b] = pair(r)
    const [p, q] = sockets.socketPair()
    a.t.sendFileDescriptor(p)
    a.t.sendFileDescriptor(q)
    a.t.writeSequence(['two', ' fds'])
    await waitUntil(() => b.fds.length === 2 && b.data.toString() === 'two fds', 'two descriptors')
    sockets.close(p)
    sockets.close(q)
    // The two received ends are a connected pair.
    const s1 = new net.Socket({ fd: b.fds[0], readable: true, writable: true })
    const s2 = new net.Socket({ fd: b.fds[1], readable: true, writable: true })
    const got = new Promise<string>((resolve) => s2.once('data', (d) => resolve(d.toString())))
    s1.write('hello over the passed pair')
    t.is(await got, 'hello over the passed pair')
    s1.destroy()
    s2.destroy()
    a.t.loseConnection()
    await b.waitLost()
  })
}
