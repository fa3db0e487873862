// docs/adopting.md "Errors, in the order they are checked" (all three adopt methods), checked synchronously in
// order, plus the closed reactor (first of all) and maxPacketSize (last). After every failure: nothing
// adopted, no fd opened/closed, the caller's fd untouched, and on a fresh reactor no thread started.
// Serial: the tests compare /proc/self/fd and /proc/self/task.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as pkg from 'reactor-socket'
import {
  Reactor,
  AddressFamily,
  SocketType,
  sockets,
  Protocol,
  ServerFactory,
  DatagramProtocol,
  UnsupportedAddressFamily,
  UnsupportedSocketType,
} from 'reactor-socket'
import {
  RecFactory,
  DgramRec,
  Rec,
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
const METHOD_NAMES: Record<Method, string> = { port: 'adoptStreamPort', connection: 'adoptStreamConnection', datagram: 'adoptDatagramPort' }

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
  opts: { mps?: any; passMps?: boolean; reactor?: any; factory?: any; protocol?: any } = {},
): any {
  const r = opts.reactor ?? new Reactor()
  if (!opts.reactor) fresh.push(r)
  const f = new RecFactory()
  const p = new DgramRec()
  const infoBefore = infoOrNull(fd)
  const fdsBefore = fdList()
  const tasksBefore = taskCount()
  const given = (key: 'factory' | 'protocol', own: any) => (Object.hasOwn(opts, key) ? opts[key] : own)
  const err = t.throws(() => call(r, method, fd, family, given('factory', f), given('protocol', p), opts.mps, opts.passMps), expectation)
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
  // hostile: the message is built from the value, and must not call its toString or constructor
  ['{ toString: {} }', { toString: {} }],
  ['a Symbol.toPrimitive that throws', { [Symbol.toPrimitive]: () => { throw new Error('toPrimitive called') } }],
  ['Object.create(null)', Object.create(null)],
  ['a constructor getter that throws', Object.defineProperty({}, 'constructor', { get: () => { throw new Error('constructor read') } })],
  ['Symbol()', Symbol('fd')],
]

for (const method of METHODS) {
  test.serial(`rule 1: ${method} with a non-integer or negative fd → TypeError, even with a bad family`, (t) => {
    for (const [, fd] of BAD_FDS) {
      rejects(t, method, fd, INET, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
      rejects(t, method, fd, 999, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
      rejects(t, method, fd, 'INET', { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
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
    for (const family of ['2', null, undefined, {}, 2n, ...BAD_FDS.slice(-5).map(([, v]) => v)]) {
      rejects(t, method, fd, family, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
      rejects(t, method, closedFd(), family, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
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
  for (const mps of [1.5, '100', NaN, null, {}, Infinity, 100n, ...BAD_FDS.slice(-5).map(([, v]) => v)]) {
    rejects(t, 'datagram', bindUdp4(), INET, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }, { mps, passMps: true })
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

// ---------------------------------------------------------------------------------------------
// Messages name what they are about: the method, the fd, socket types and families by name

test.serial('rule 4 messages name the method, the fd and both socket types', (t) => {
  for (const method of ['port', 'connection'] as const) {
    const fd = bindUdp4()
    const err = rejects(t, method, fd, INET, { instanceOf: UnsupportedSocketType })
    const name = METHOD_NAMES[method]
    t.is(err.message, `${name}: fd ${fd} is a SOCK_DGRAM socket; ${name} needs SOCK_STREAM`)
    t.is(err.socketType, SocketType.DGRAM)
    t.is(err.socketTypeName, 'SOCK_DGRAM')
    t.is(err.fd, fd)
    t.is(err.code, 'ERR_UNSUPPORTED_SOCKET_TYPE')
  }
  const fd = listenTcp4()
  const err = rejects(t, 'datagram', fd, INET, { instanceOf: UnsupportedSocketType })
  t.is(err.message, `adoptDatagramPort: fd ${fd} is a SOCK_STREAM socket; adoptDatagramPort needs SOCK_DGRAM`)
  t.is(err.socketTypeName, 'SOCK_STREAM')
})

test.serial('rule 5 messages name the method, the fd and both families', (t) => {
  const v4 = listenTcp4()
  let err = rejects(t, 'port', v4, INET6, { instanceOf: UnsupportedAddressFamily })
  t.is(err.message, `adoptStreamPort: fd ${v4} is an AF_INET socket, not AF_INET6 as given`)
  t.like(err, { family: INET6, familyName: 'AF_INET6', actualFamily: INET, actualFamilyName: 'AF_INET', fd: v4, code: 'ERR_UNSUPPORTED_ADDRESS_FAMILY' })
  const [a, b] = sockets.socketPair()
  track(a)
  track(b)
  err = rejects(t, 'connection', a, INET, { instanceOf: UnsupportedAddressFamily })
  t.is(err.message, `adoptStreamConnection: fd ${a} is an AF_UNIX socket, not AF_INET as given`)
  const u6 = bindUdp6()
  err = rejects(t, 'datagram', u6, INET, { instanceOf: UnsupportedAddressFamily })
  t.is(err.message, `adoptDatagramPort: fd ${u6} is an AF_INET6 socket, not AF_INET as given`)
})

test.serial('rule 2 messages name the family given and the ones the method takes', (t) => {
  let err = rejects(t, 'port', closedFd(), 999, { instanceOf: UnsupportedAddressFamily })
  t.is(err.message, 'adoptStreamPort: address family 999 is not supported; use AF_INET, AF_INET6 or AF_UNIX')
  t.is(err.familyName, '999')
  t.is(err.code, 'ERR_UNSUPPORTED_ADDRESS_FAMILY')
  err = rejects(t, 'datagram', bindUdp4(), UNIX, { instanceOf: UnsupportedAddressFamily })
  t.is(err.message, `adoptDatagramPort: address family AF_UNIX (${UNIX}) is not supported; use AF_INET or AF_INET6`)
  t.is(err.familyName, 'AF_UNIX')
})

test.serial('rule 3 and rule 6 messages name the method and the fd', (t) => {
  const closed = closedFd()
  let err = rejects(t, 'port', closed, INET, { code: 'EBADF' })
  t.regex(err.message, new RegExp(`^adoptStreamPort: fd ${closed} is not open: EBADF: bad file descriptor$`))
  t.is(err.fd, closed)
  const devnull = fs.openSync('/dev/null', 'r')
  plainFds.push(devnull)
  err = rejects(t, 'datagram', devnull, INET, { code: 'ENOTSOCK' })
  t.regex(err.message, new RegExp(`^adoptDatagramPort: fd ${devnull} is not a socket: ENOTSOCK`))
  const { client } = connectedTcp4()
  err = rejects(t, 'port', client, INET, { code: 'EINVAL' })
  t.regex(err.message, new RegExp(`^adoptStreamPort: fd ${client} is not a listening socket`))
  const listener = listenTcp4()
  err = rejects(t, 'connection', listener, INET, { code: 'ENOTCONN' })
  t.regex(err.message, new RegExp(`^adoptStreamConnection: fd ${listener} is not connected: ENOTCONN`))
  t.is(err.fd, listener)
})

test('type and family names come from the exported constants; a number without a name stays a number', (t) => {
  for (const [key, value] of Object.entries(SocketType)) t.is(new UnsupportedSocketType(value).socketTypeName, `SOCK_${key}`)
  for (const [key, value] of Object.entries(AddressFamily)) t.is(new UnsupportedAddressFamily(value).familyName, `AF_${key}`)
  t.is(SocketType.RAW, 3)
  t.is(UnsupportedSocketType.refused('adoptStreamPort', 7, SocketType.SEQPACKET, SocketType.STREAM).message, 'adoptStreamPort: fd 7 is a SOCK_SEQPACKET socket; adoptStreamPort needs SOCK_STREAM')
  t.is(UnsupportedSocketType.refused('adoptStreamPort', 7, 99, SocketType.STREAM).message, 'adoptStreamPort: fd 7 is a socket of type 99; adoptStreamPort needs SOCK_STREAM')
  t.is(new UnsupportedSocketType(99).socketTypeName, '99')
  t.is(UnsupportedAddressFamily.mismatch('adoptStreamPort', 7, INET, 17).message, 'adoptStreamPort: fd 7 is a socket of family 17, not AF_INET as given')
})

// ---------------------------------------------------------------------------------------------
// The factory (stream methods) and the protocol (datagram): checked at once, after rules 1–6

class Echo extends Protocol {}
class MyFactory extends ServerFactory {}
class Ticks extends DatagramProtocol {}

const BAD_FACTORIES: [string, any, RegExp][] = [
  ['a Protocol class', Echo, /: factory must have buildProtocol\(\); got the class Echo, a protocol — pass ServerFactory\.forProtocol\(Echo\)$/],
  ['a factory class', MyFactory, /: factory must have buildProtocol\(\); got the class MyFactory, not an instance of it — pass new MyFactory\(\)$/],
  ['a protocol instance', new Echo(), /: factory must have buildProtocol\(\); got an instance of Echo, a protocol — .*ServerFactory\.forProtocol\(Echo\)$/],
  ['a plain object', {}, /: factory must have buildProtocol\(\); got an instance of Object$/],
  ['null', null, /: factory must have buildProtocol\(\); got null$/],
  ['undefined', undefined, /: factory must have buildProtocol\(\); got type undefined$/],
  ['a function', function make() {}, /: factory must have buildProtocol\(\); got the function make$/],
]

for (const method of ['port', 'connection'] as const) {
  test.serial(`${method}: a factory without buildProtocol → TypeError ERR_INVALID_ARG_TYPE at once, saying what was passed and what to pass; nothing left behind`, async (t) => {
    const good = () => (method === 'port' ? listenTcp4() : connectedTcp4().client)
    for (const [what, factory, message] of BAD_FACTORIES) {
      const fd = good()
      const err = rejects(t, method, fd, INET, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any, { factory })
      t.true(err.message.startsWith(`${METHOD_NAMES[method]}: factory`), `${what}: ${err.message}`)
      t.regex(err.message, message, what)
    }
    // the same fd adopts fine afterwards with a factory
    const r = new Reactor()
    fresh.push(r)
    const fd = good()
    t.throws(() => (method === 'port' ? r.adoptStreamPort(fd, INET, Echo as any) : r.adoptStreamConnection(fd, INET, Echo as any)), { instanceOf: TypeError })
    if (method === 'port') {
      const port = r.adoptStreamPort(fd, INET, ServerFactory.forProtocol(Echo))
      await within(port.stopListening(), 'stopListening')
    } else {
      const p = r.adoptStreamConnection(fd, INET, ServerFactory.forProtocol(Rec)) as Rec
      t.true(p instanceof Rec)
      p.t.abortConnection()
      await p.waitLost()
    }
  })
}

test.serial('datagram: a protocol that is not a DatagramProtocol → TypeError ERR_INVALID_ARG_TYPE at once, saying what is missing; nothing left behind', (t) => {
  const cases: [string, any, RegExp][] = [
    ['a DatagramProtocol class', Ticks, /got the class Ticks, not an instance of it — pass new Ticks\(\)$/],
    ['an object with datagramReceived only', { datagramReceived() {} }, /got an instance of Object, which has no makeConnection, doStop$/],
    ['a stream protocol', new Echo(), /got an instance of Echo, a stream protocol, which has no doStop, datagramReceived$/],
    ['a factory', new RecFactory(), /got an instance of RecFactory, a stream factory, which has no makeConnection, datagramReceived$/],
    ['null', null, /got null$/],
    ['a number', 3, /got type number$/],
  ]
  for (const [what, protocol, message] of cases) {
    const err = rejects(t, 'datagram', bindUdp4(), INET, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any, { protocol })
    t.true(err.message.startsWith('adoptDatagramPort: protocol must be a DatagramProtocol (with makeConnection, doStop and datagramReceived); got '), `${what}: ${err.message}`)
    t.regex(err.message, message, what)
  }
  // a protocol with only the batch hook is a datagram protocol
  const r = new Reactor()
  fresh.push(r)
  const bulk = { makeConnection() {}, doStop() {}, datagramsReceived() {} }
  t.notThrows(() => r.adoptDatagramPort(bindUdp4(), INET, bulk as any))
})

test.serial('the factory and the protocol are checked after rules 1–6 (a bad fd keeps its own error), and the protocol before maxPacketSize', (t) => {
  rejects(t, 'port', 'x', INET, { instanceOf: TypeError, message: /fd/ }, { factory: Echo })
  rejects(t, 'port', closedFd(), 999, { instanceOf: UnsupportedAddressFamily }, { factory: Echo })
  rejects(t, 'port', closedFd(), INET, { code: 'EBADF' }, { factory: Echo })
  rejects(t, 'connection', closedFd(), INET, { code: 'EBADF' }, { factory: null })
  rejects(t, 'port', bindUdp4(), INET, { instanceOf: UnsupportedSocketType }, { factory: null })
  rejects(t, 'port', listenTcp4(), INET6, { instanceOf: UnsupportedAddressFamily }, { factory: {} })
  rejects(t, 'connection', listenTcp4(), INET, { code: 'ENOTCONN' }, { factory: {} })
  rejects(t, 'port', connectedTcp4().client, INET, { code: 'EINVAL' }, { factory: Echo })
  rejects(t, 'datagram', closedFd(), INET, { code: 'EBADF' }, { protocol: null, mps: 0, passMps: true })
  rejects(t, 'datagram', listenTcp4(), INET, { instanceOf: UnsupportedSocketType }, { protocol: null })
  const err = rejects(t, 'datagram', bindUdp4(), INET, { instanceOf: TypeError }, { protocol: null, mps: 0, passMps: true })
  t.regex(err.message, /protocol/, 'the protocol is checked before maxPacketSize')
  rejects(t, 'datagram', bindUdp4(), INET, { instanceOf: RangeError }, { mps: 0, passMps: true })
})

// ---------------------------------------------------------------------------------------------
// Every error class has a string `code`

/** One instance of each Error class the package exports, and the code it has. A new class needs a row. */
const ERROR_SAMPLES: Record<string, [() => Error, string]> = {
  UnsupportedAddressFamily: [() => new UnsupportedAddressFamily(999), 'ERR_UNSUPPORTED_ADDRESS_FAMILY'],
  UnsupportedSocketType: [() => new UnsupportedSocketType(SocketType.SEQPACKET), 'ERR_UNSUPPORTED_SOCKET_TYPE'],
  InvalidAddressError: [() => new pkg.InvalidAddressError('not an IP literal'), 'ERR_INVALID_ADDRESS'],
  MessageLengthError: [() => new pkg.MessageLengthError(), 'EMSGSIZE'],
  ConnectionClosed: [() => new pkg.ConnectionClosed(), 'ERR_CONNECTION_CLOSED'],
  ConnectionDone: [() => new pkg.ConnectionDone(), 'ERR_CONNECTION_DONE'],
  ConnectionLost: [() => new pkg.ConnectionLost(), 'ERR_CONNECTION_LOST'],
  ConnectionAborted: [() => new pkg.ConnectionAborted(), 'ERR_CONNECTION_ABORTED'],
  TLSError: [() => new pkg.TLSError('ERR_TLS_HANDSHAKE', 'handshake failed'), 'ERR_TLS_HANDSHAKE'],
  ConnectError: [() => new pkg.ConnectError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), 'ECONNREFUSED'],
}

test('every Error class the package exports has a string code', (t) => {
  const classes = Object.entries(pkg)
    .filter(([, value]) => typeof value === 'function' && (value as any).prototype instanceof Error)
    .map(([name]) => name)
    .sort()
  t.deepEqual(classes, Object.keys(ERROR_SAMPLES).sort(), 'a sample for every exported Error class')
  for (const name of classes) {
    const [make, code] = ERROR_SAMPLES[name]
    const err: any = make()
    t.true(err instanceof (pkg as any)[name], name)
    t.is(typeof err.code, 'string', `${name}.code`)
    t.is(err.code, code, `${name}.code`)
    t.is(err.name, name)
  }
  // a syscall's code wins over ConnectionLost's own, with its errno
  const reset = new pkg.ConnectionLost('reset', 'ECONNRESET')
  t.like(reset, { code: 'ECONNRESET', errno: -104 })
  t.is((new pkg.ConnectionLost() as any).errno, undefined)
})

test.serial('the reasons a connection gets carry their codes: ConnectionDone, ConnectionAborted', async (t) => {
  const r = new Reactor()
  fresh.push(r)
  const reasons: any[] = []
  for (const end of ['lose', 'abort'] as const) {
    const [a, b] = sockets.socketPair()
    track(b)
    const p = r.adoptStreamConnection(a, UNIX, ServerFactory.forProtocol(Rec)) as Rec
    sockets.close(a)
    if (end === 'lose') p.t.loseConnection()
    else p.t.abortConnection()
    reasons.push(await p.waitLost())
  }
  t.true(reasons[0] instanceof pkg.ConnectionDone)
  t.is(reasons[0].code, 'ERR_CONNECTION_DONE')
  t.true(reasons[1] instanceof pkg.ConnectionAborted)
  t.is(reasons[1].code, 'ERR_CONNECTION_ABORTED')
})
