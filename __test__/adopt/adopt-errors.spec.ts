// README "Errors, in the order they are checked" (all three adopt methods), checked synchronously in
// order, plus the closed reactor (first of all) and maxPacketSize (last). After every failure: nothing
// adopted, no fd opened/closed, the caller's fd untouched, and on a fresh reactor no thread started.
// Serial: the tests compare /proc/self/fd and /proc/self/task.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  Reactor,
  AddressFamily,
  SocketType,
  sockets,
  UnsupportedAddressFamily,
  UnsupportedSocketType,
} from 'reactor-socket'
import {
  RecFactory,
  DgramRec,
  fdList,
  taskCount,
  warmThreadPool,
  closedFd,
  listenTcp4,
  listenTcp6,
  bindUdp4,
  bindUdp6,
  listenUnixFd,
  portOf,
  track,
  closeTracked,
  connectedTcp4,
  nodeClient,
  within,
} from '../helpers.js'

const INET = AddressFamily.INET
const INET6 = AddressFamily.INET6
const UNIX = AddressFamily.UNIX

type Method = 'port' | 'connection' | 'datagram'
const METHODS: Method[] = ['port', 'connection', 'datagram']

const fresh: any[] = []
const plainFds: number[] = []

test.before(async () => {
  await warmThreadPool()
})

test.after.always(async () => {
  for (const r of fresh) await r.close()
  for (const fd of plainFds) {
    try {
      fs.closeSync(fd)
    } catch {}
  }
  closeTracked()
})

function call(r: any, method: Method, fd: any, family: any, f: any, p: any, mps?: any, passMps = false) {
  if (method === 'port') return r.adoptStreamPort(fd, family, f)
  if (method === 'connection') return r.adoptStreamConnection(fd, family, f)
  return passMps ? r.adoptDatagramPort(fd, family, p, mps) : r.adoptDatagramPort(fd, family, p)
}

function infoOrNull(fd: any) {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) return null
  try {
    return sockets.info(fd)
  } catch {
    return null
  }
}

/**
 * Calls the method on a fresh reactor and checks that it throws `expectation` and that nothing
 * changed: fds, threads, the caller's socket, the factory/protocol.
 */
function rejects(
  t: ExecutionContext,
  method: Method,
  fd: any,
  family: any,
  expectation: any,
  opts: { mps?: any; passMps?: boolean; reactor?: any } = {},
): any {
  const r = opts.reactor ?? new Reactor()
  if (!opts.reactor) fresh.push(r)
  const f = new RecFactory()
  const p = new DgramRec()
  const infoBefore = infoOrNull(fd)
  const fdsBefore = fdList()
  const tasksBefore = taskCount()
  const err = t.throws(() => call(r, method, fd, family, f, p, opts.mps, opts.passMps), expectation)
  t.deepEqual(fdList(), fdsBefore, 'a failed adopt opens and closes no fd')
  if (!opts.reactor) t.is(taskCount(), tasksBefore, 'a failed adopt on a fresh reactor starts no thread')
  if (infoBefore) t.deepEqual(sockets.info(fd), infoBefore, "the caller's fd is untouched")
  t.is(f.doStarts, 0, 'doStart not called')
  t.is(f.starts, 0, 'startFactory not called')
  t.is(f.addrs.length, 0, 'buildProtocol not called')
  t.is(p.starts, 0, 'startProtocol not called')
  t.falsy(p.t, 'no transport set on the datagram protocol')
  return err
}

// ---------------------------------------------------------------------------------------------
// A closed reactor comes first of all

for (const method of METHODS) {
  test.serial(`closed reactor: ${method} throws ERR_REACTOR_CLOSED before any other check`, async (t) => {
    const r = new Reactor()
    await r.close()
    await r.close() // idempotent
    const good = method === 'datagram' ? bindUdp4() : method === 'port' ? listenTcp4() : connectedTcp4().client
    for (const [fd, family] of [
      [good, method === 'datagram' ? INET : INET],
      [-1, 999],
      ['x', 'y'],
      [closedFd(), INET],
      [good, UNIX],
    ] as const) {
      const err = rejects(t, method, fd, family, { code: 'ERR_REACTOR_CLOSED' }, { reactor: r, mps: 'bad', passMps: true })
      t.true(err instanceof Error)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Rule 1: fd not a non-negative integer → TypeError (before the family is checked)

const BAD_FDS: [string, any][] = [
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ["'3'", '3'],
  ['null', null],
  ['undefined', undefined],
  ['{}', {}],
  ['3n', 3n],
]

for (const method of METHODS) {
  test.serial(`rule 1: ${method} with a non-integer or negative fd → TypeError, even with a bad family`, (t) => {
    for (const [, fd] of BAD_FDS) {
      rejects(t, method, fd, INET, { instanceOf: TypeError })
      rejects(t, method, fd, 999, { instanceOf: TypeError })
      rejects(t, method, fd, 'INET', { instanceOf: TypeError })
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Rule 2: unsupported family → UnsupportedAddressFamily (property family), before the fd is looked at

for (const method of METHODS) {
  test.serial(`rule 2: ${method} with an unsupported family and a closed fd → UnsupportedAddressFamily`, (t) => {
    for (const family of [999, 0, -1, 3]) {
      const err = rejects(t, method, closedFd(), family, { instanceOf: UnsupportedAddressFamily })
      t.is(err.family, family)
      t.true(err instanceof Error)
    }
    // also with a valid fd of the right kind
    const fd = method === 'datagram' ? bindUdp4() : method === 'port' ? listenTcp4() : connectedTcp4().client
    const err = rejects(t, method, fd, 999, { instanceOf: UnsupportedAddressFamily })
    t.is(err.family, 999)
  })

  test.serial(`rule 2: ${method} with a family that is not a number → TypeError`, (t) => {
    const fd = method === 'datagram' ? bindUdp4() : method === 'port' ? listenTcp4() : connectedTcp4().client
    for (const family of ['2', null, undefined, {}, 2n]) {
      rejects(t, method, fd, family, { instanceOf: TypeError })
      rejects(t, method, closedFd(), family, { instanceOf: TypeError })
    }
  })
}

test.serial('rule 2: adoptDatagramPort does not support UNIX: UnsupportedAddressFamily before the fd is looked at', (t) => {
  let err = rejects(t, 'datagram', closedFd(), UNIX, { instanceOf: UnsupportedAddressFamily })
  t.is(err.family, UNIX)
  const devnull = fs.openSync('/dev/null', 'r')
  plainFds.push(devnull)
  err = rejects(t, 'datagram', devnull, UNIX, { instanceOf: UnsupportedAddressFamily })
  t.is(err.family, UNIX)
  // a UNIX stream socket: rule 2 wins over rule 4
  const [a, b] = sockets.socketPair()
  track(a)
  track(b)
  err = rejects(t, 'datagram', a, UNIX, { instanceOf: UnsupportedAddressFamily })
  t.is(err.family, UNIX)
  // a UDP socket with family UNIX
  err = rejects(t, 'datagram', bindUdp4(), UNIX, { instanceOf: UnsupportedAddressFamily })
  t.is(err.family, UNIX)
})

// ---------------------------------------------------------------------------------------------
// Rule 3: fd not open → EBADF; not a socket → ENOTSOCK

for (const method of METHODS) {
  const families = method === 'datagram' ? [INET, INET6] : [INET, INET6, UNIX]
  test.serial(`rule 3: ${method} with a closed fd → EBADF (every supported family)`, (t) => {
    for (const family of families) {
      const err = rejects(t, method, closedFd(), family, { code: 'EBADF' })
      t.true(err instanceof Error)
      t.is((err as any).errno, -9, "errno is negative, as in Node (libuv)")
    }
    rejects(t, method, 65000, families[0], { code: 'EBADF' })
  })

  test.serial(`rule 3: ${method} with a non-socket fd → ENOTSOCK`, (t) => {
    const tmpFile = path.join(os.tmpdir(), `rs-${process.pid}-plain.txt`)
    fs.writeFileSync(tmpFile, 'x')
    const fds = [fs.openSync('/dev/null', 'r'), fs.openSync(tmpFile, 'r'), fs.openSync(os.tmpdir(), 'r')]
    plainFds.push(...fds)
    for (const fd of fds) {
      for (const family of families) {
        const err = rejects(t, method, fd, family, { code: 'ENOTSOCK' })
        t.is((err as any).errno, -88, "errno is negative, as in Node (libuv)")
      }
      t.notThrows(() => fs.fstatSync(fd), 'the non-socket fd is still open')
    }
    fs.unlinkSync(tmpFile)
  })
}

// ---------------------------------------------------------------------------------------------
// Rule 4: wrong socket type → UnsupportedSocketType (socketType = actual SO_TYPE), before rule 5

test.serial('rule 4: a UDP fd to adoptStreamPort / adoptStreamConnection → UnsupportedSocketType DGRAM', (t) => {
  for (const method of ['port', 'connection'] as const) {
    for (const [fd, family] of [
      [bindUdp4(), INET],
      [bindUdp6(), INET6],
      [bindUdp4(), INET6], // wrong family too: rule 4 is checked first
      [bindUdp6(), UNIX],
    ] as const) {
      const err = rejects(t, method, fd, family, { instanceOf: UnsupportedSocketType })
      t.is(err.socketType, SocketType.DGRAM)
      t.true(err instanceof Error)
    }
  }
})

test.serial('rule 4: a stream fd to adoptDatagramPort → UnsupportedSocketType STREAM', (t) => {
  for (const [fd, family] of [
    [listenTcp4(), INET],
    [listenTcp6(), INET6],
    [connectedTcp4().client, INET],
    [listenTcp4(), INET6], // wrong family too: rule 4 first
  ] as const) {
    const err = rejects(t, 'datagram', fd, family, { instanceOf: UnsupportedSocketType })
    t.is(err.socketType, SocketType.STREAM)
  }
})

test.serial('SocketType holds the platform numbers', (t) => {
  t.is(SocketType.STREAM, 1)
  t.is(SocketType.DGRAM, 2)
  t.is(SocketType.SEQPACKET, 5)
  t.is(AddressFamily.INET, 2)
  t.is(AddressFamily.INET6, 10)
  t.is(AddressFamily.UNIX, 1)
})

// ---------------------------------------------------------------------------------------------
// Rule 5: actual family differs → UnsupportedAddressFamily with family and actualFamily, before rule 6

test.serial('rule 5: adoptStreamPort with a listening socket of another family', (t) => {
  const v4 = listenTcp4()
  const v6 = listenTcp6()
  const { fd: ux } = listenUnixFd()
  for (const [fd, family, actual] of [
    [v4, INET6, INET],
    [v4, UNIX, INET],
    [v6, INET, INET6],
    [v6, UNIX, INET6],
    [ux, INET, UNIX],
    [ux, INET6, UNIX],
  ] as const) {
    const err = rejects(t, 'port', fd, family, { instanceOf: UnsupportedAddressFamily })
    t.is(err.family, family)
    t.is(err.actualFamily, actual)
  }
})

test.serial('rule 5: adoptStreamConnection with a connected socket of another family', (t) => {
  const { client } = connectedTcp4()
  const [a, b] = sockets.socketPair()
  track(a)
  track(b)
  for (const [fd, family, actual] of [
    [client, INET6, INET],
    [client, UNIX, INET],
    [a, INET, UNIX],
    [a, INET6, UNIX],
  ] as const) {
    const err = rejects(t, 'connection', fd, family, { instanceOf: UnsupportedAddressFamily })
    t.is(err.family, family)
    t.is(err.actualFamily, actual)
  }
})

test.serial('rule 5: adoptDatagramPort with a UDP socket of another family', (t) => {
  for (const [fd, family, actual] of [
    [bindUdp4(), INET6, INET],
    [bindUdp6(), INET, INET6],
  ] as const) {
    const err = rejects(t, 'datagram', fd, family, { instanceOf: UnsupportedAddressFamily })
    t.is(err.family, family)
    t.is(err.actualFamily, actual)
  }
})

test.serial('rule 5 comes before rule 6 (wrong family and wrong state → UnsupportedAddressFamily)', (t) => {
  const { client, listener } = connectedTcp4()
  let err = rejects(t, 'port', client, INET6, { instanceOf: UnsupportedAddressFamily }) // connected, not listening
  t.is(err.actualFamily, INET)
  err = rejects(t, 'connection', listener, INET6, { instanceOf: UnsupportedAddressFamily }) // listening, not connected
  t.is(err.actualFamily, INET)
  const [a, b] = sockets.socketPair()
  track(a)
  track(b)
  err = rejects(t, 'port', a, INET, { instanceOf: UnsupportedAddressFamily })
  t.is(err.actualFamily, UNIX)
})

// ---------------------------------------------------------------------------------------------
// Rule 6: state

test.serial('rule 6: adoptStreamPort with a socket that is not listening → EINVAL saying so', (t) => {
  const { client } = connectedTcp4()
  const l6 = listenTcp6()
  const c6 = track(sockets.connectTcp('::1', portOf(l6)))
  const [a, b] = sockets.socketPair()
  track(a)
  track(b)
  for (const [fd, family] of [
    [client, INET],
    [c6, INET6],
    [a, UNIX],
  ] as const) {
    const err = rejects(t, 'port', fd, family, { code: 'EINVAL' })
    t.true(err instanceof Error)
    t.is((err as any).errno, -22, "errno is negative, as in Node (libuv)")
    t.regex(err.message, /listen/i, 'the message says the socket is not listening')
  }
})

test.serial('rule 6: adoptStreamConnection with a socket that is not connected → ENOTCONN', (t) => {
  const { fd: ux } = listenUnixFd()
  for (const [fd, family] of [
    [listenTcp4(), INET],
    [listenTcp6(), INET6],
    [ux, UNIX],
  ] as const) {
    const err = rejects(t, 'connection', fd, family, { code: 'ENOTCONN' })
    t.is((err as any).errno, -107, "errno is negative, as in Node (libuv)")
  }
})

// ---------------------------------------------------------------------------------------------
// maxPacketSize: checked after rules 1–6

test.serial('maxPacketSize: not an integer → TypeError; outside 1..65535 → RangeError', (t) => {
  for (const mps of [1.5, '100', NaN, null, {}, Infinity, 100n]) {
    rejects(t, 'datagram', bindUdp4(), INET, { instanceOf: TypeError }, { mps, passMps: true })
  }
  for (const mps of [0, -1, 65536, 100000]) {
    rejects(t, 'datagram', bindUdp4(), INET, { instanceOf: RangeError }, { mps, passMps: true })
  }
})

test.serial('maxPacketSize is checked after rules 1–6', (t) => {
  rejects(t, 'datagram', -1, INET, { instanceOf: TypeError }, { mps: 0, passMps: true })
  let err = rejects(t, 'datagram', closedFd(), UNIX, { instanceOf: UnsupportedAddressFamily }, { mps: 1.5, passMps: true })
  t.is(err.family, UNIX)
  rejects(t, 'datagram', closedFd(), INET, { code: 'EBADF' }, { mps: 0, passMps: true })
  const devnull = fs.openSync('/dev/null', 'r')
  plainFds.push(devnull)
  rejects(t, 'datagram', devnull, INET, { code: 'ENOTSOCK' }, { mps: 'x', passMps: true })
  err = rejects(t, 'datagram', listenTcp4(), INET, { instanceOf: UnsupportedSocketType }, { mps: 70000, passMps: true })
  t.is(err.socketType, SocketType.STREAM)
  err = rejects(t, 'datagram', bindUdp4(), INET6, { instanceOf: UnsupportedAddressFamily }, { mps: -5, passMps: true })
  t.is(err.actualFamily, INET)
})

test.serial('maxPacketSize: 1, 65535 and undefined are accepted', async (t) => {
  const r = new Reactor()
  fresh.push(r)
  for (const mps of [1, 65535, undefined]) {
    const p = new DgramRec()
    const port = r.adoptDatagramPort(bindUdp4(), INET, p, mps)
    t.is(p.starts, 1)
    await within(port.stopListening(), 'stopListening')
  }
})

// ---------------------------------------------------------------------------------------------
// After failures the reactor still works, and the caller's fd can still be adopted

test.serial('after failed adoptions the same reactor and the same fds still adopt fine', async (t) => {
  const r = new Reactor()
  fresh.push(r)
  const l = listenTcp4()
  const f = new RecFactory()
  t.throws(() => r.adoptStreamPort(l, INET6, f), { instanceOf: UnsupportedAddressFamily })
  t.throws(() => r.adoptStreamConnection(l, INET, f), { code: 'ENOTCONN' })
  t.throws(() => r.adoptDatagramPort(l, INET, new DgramRec()), { instanceOf: UnsupportedSocketType })
  t.is(f.doStarts, 0)
  const port = r.adoptStreamPort(l, INET, f)
  t.is(f.doStarts, 1)
  const peer = await nodeClient(portOf(l))
  peer.sock.write('ping')
  await peer.waitText('ping')
  peer.destroy()
  await within(port.stopListening(), 'stopListening')
})
