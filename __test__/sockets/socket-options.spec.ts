// docs/adopting.md "Socket options": sockets.setOption / getOption on raw fds, transport.setOption / getOption
// on connections a Reactor adopted or accepted (both reactor modes), and the recvBufferSize /
// sendBufferSize options of listenTcp and listenUnix. Every option is set and read back on a real
// socket of each kind it applies to; values at and past their limits; options on the wrong kind of
// socket give the kernel's errno; SO_MARK and IP_TRANSPARENT as root and as uid 65534 (EPERM).
// Every test closes what it opens and checks the fd table.
import test, { type ExecutionContext, type Implementation } from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  sockets,
  SocketOption,
  AddressFamily,
  Reactor,
  type SocketOptionName,
  type IStreamTransport,
} from 'reactor-socket'
import {
  MODES,
  Child,
  RecFactory,
  Rec,
  fdList,
  settleFds,
  closedFd,
  nodeClient,
  hasCommand,
  tmpSockPath,
  within,
  waitUntil,
  type Mode,
} from '../helpers.js'

const load = createRequire(path.join(process.cwd(), 'package.json'))
const binding = load('./native/binding.js')

const INT_MAX = 2 ** 31 - 1
const sysctl = (name: string) => Number(fs.readFileSync(`/proc/sys/${name}`, 'utf8').trim())
const RMEM_MAX = sysctl('net/core/rmem_max')
const WMEM_MAX = sysctl('net/core/wmem_max')
const SOMAXCONN = sysctl('net/core/somaxconn')
const IS_ROOT = process.getuid?.() === 0
/** What the kernel answers for an option of another protocol: ENOPROTOOPT from an IP socket's
 *  setsockopt, EOPNOTSUPP (Node's code: 'ENOTSUP') from its getsockopt and from a UNIX socket's. */
const NOT_APPLICABLE = ['ENOPROTOOPT', 'ENOTSUP']

// ---------------------------------------------------------------------------------------------
// Sockets of each kind, closed at the end of the test that made them, and the fd-table check.

type Kind = 'tcp4-listener' | 'tcp6-listener' | 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix-listener' | 'unix'

class Scope {
  private readonly fds: number[] = []
  private readonly paths: string[] = []
  keep(fd: number): number {
    this.fds.push(fd)
    return fd
  }
  /** A fresh socket of `kind` (a connection's listener and peer are kept too). */
  socket(kind: Kind): number {
    switch (kind) {
      case 'tcp4-listener':
        return this.keep(sockets.listenTcp({ host: '127.0.0.1' }))
      case 'tcp6-listener':
        return this.keep(sockets.listenTcp({ host: '::1' }))
      case 'tcp4':
      case 'tcp6': {
        const host = kind === 'tcp4' ? '127.0.0.1' : '::1'
        const listener = this.keep(sockets.listenTcp({ host }))
        return this.keep(sockets.connectTcp(host, portOf(listener)))
      }
      case 'udp4':
        return this.keep(sockets.bindUdp({ host: '127.0.0.1' }))
      case 'udp6':
        return this.keep(sockets.bindUdp({ host: '::1' }))
      case 'unix-listener':
        return this.keep(sockets.listenUnix(this.path('opt')))
      case 'unix': {
        const [a, b] = sockets.socketPair()
        this.keep(b)
        return this.keep(a)
      }
    }
  }
  path(tag: string): string {
    const p = tmpSockPath(tag)
    this.paths.push(p)
    return p
  }
  close() {
    for (const fd of this.fds.splice(0).reverse()) sockets.close(fd)
    for (const p of this.paths.splice(0)) fs.rmSync(p, { force: true })
  }
}

const portOf = (fd: number): number => (sockets.info(fd).local as { port: number }).port

/** Runs `body` with a Scope; closes it, then checks that no fd opened meanwhile is left. */
async function scoped(t: ExecutionContext, body: (s: Scope) => unknown) {
  const before = fdList()
  const scope = new Scope()
  try {
    await body(scope)
  } finally {
    scope.close()
  }
  t.deepEqual(await settleFds(before), [], 'no fd left behind')
}

/** Expects `call` to throw an Error with `code` (and a negative errno when it is a syscall's). */
function throwsCode(t: ExecutionContext, call: () => unknown, code: string | string[], what: string) {
  const codes = Array.isArray(code) ? code : [code]
  const err = t.throws(call, undefined, what) as (Error & { code?: string; errno?: number }) | undefined
  t.true(err !== undefined && codes.includes(err.code ?? ''), `${what}: code ${err?.code}, expected ${codes.join(' or ')} (${err?.message})`)
  if (err?.code?.startsWith('E') && !err.code.startsWith('ERR_')) t.is(typeof err.errno, 'number', `${what}: errno`)
  return err
}

// ---------------------------------------------------------------------------------------------
// The names

test.serial('SocketOption: a frozen object of the 19 names, exactly the core\'s table', (t) => {
  t.true(Object.isFrozen(SocketOption))
  const names = Object.keys(SocketOption)
  t.is(names.length, 19)
  for (const name of names) t.is((SocketOption as Record<string, string>)[name], name)
  t.deepEqual(binding.sockets.socketOptions().map((spec: { name: string }) => spec.name), names, 'the binding lists the same names in the same order')
  t.throws(() => {
    ;(SocketOption as any).SO_LINGER = 'SO_LINGER'
  })
})

test.serial('an unknown name is a TypeError ERR_INVALID_ARG_VALUE listing the known ones; a name that is no string ERR_INVALID_ARG_TYPE', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('tcp4')
    for (const name of ['SO_LINGER', 'so_rcvbuf', 'TCP_NODELAY ', '']) {
      for (const call of [() => sockets.setOption(fd, name as any, 1 as any), () => sockets.getOption(fd, name as any)]) {
        const err = t.throws(call, { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' } as any)
        for (const known of Object.keys(SocketOption)) t.true(err!.message.includes(known), `the message lists ${known}`)
      }
    }
    for (const name of [42, undefined, null, Symbol('SO_MARK'), { name: 'SO_MARK' }]) {
      t.throws(() => sockets.setOption(fd, name as any, 1 as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
      t.throws(() => sockets.getOption(fd, name as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Every option set and read back on each kind of socket it applies to

interface Case {
  option: SocketOptionName
  on: Kind[]
  /** [value set, value the kernel reports]. */
  values: [unknown, unknown][]
  privileged?: boolean
}

const BOOLS: [boolean, boolean][] = [
  [true, true],
  [false, false],
]
const TCP: Kind[] = ['tcp4-listener', 'tcp6-listener', 'tcp4', 'tcp6']

const CASES: Case[] = [
  // Linux keeps twice the size asked for, capped at rmem_max / wmem_max first.
  { option: 'SO_RCVBUF', on: ['tcp4-listener', 'tcp4', 'udp4', 'udp6', 'unix-listener', 'unix'], values: [[65536, 131072], [INT_MAX, 2 * RMEM_MAX]] },
  { option: 'SO_SNDBUF', on: ['tcp4-listener', 'tcp4', 'udp4', 'udp6', 'unix-listener', 'unix'], values: [[32768, 65536], [INT_MAX, 2 * WMEM_MAX]] },
  { option: 'SO_KEEPALIVE', on: [...TCP, 'udp4', 'unix'], values: BOOLS },
  { option: 'SO_REUSEPORT', on: [...TCP, 'udp4', 'udp6'], values: BOOLS },
  { option: 'SO_MARK', on: [...TCP, 'udp4', 'udp6'], values: [[7, 7], [INT_MAX, INT_MAX], [0, 0]], privileged: true },
  { option: 'SO_BINDTODEVICE', on: ['tcp4-listener', 'tcp4', 'udp4', 'udp6'], values: [['lo', 'lo'], ['', '']] },
  { option: 'TCP_NODELAY', on: TCP, values: BOOLS },
  { option: 'TCP_KEEPIDLE', on: TCP, values: [[1, 1], [60, 60], [32767, 32767]] },
  { option: 'TCP_KEEPINTVL', on: TCP, values: [[1, 1], [15, 15], [32767, 32767]] },
  { option: 'TCP_KEEPCNT', on: TCP, values: [[1, 1], [9, 9], [127, 127]] },
  { option: 'TCP_USER_TIMEOUT', on: TCP, values: [[1500, 1500], [INT_MAX, INT_MAX], [0, 0]] },
  // Seconds become SYN-ACK retransmissions (1, 2, 4, ... s, then 120 s each, at most 255): read
  // back rounded up to that schedule.
  { option: 'TCP_DEFER_ACCEPT', on: ['tcp4-listener', 'tcp6-listener'], values: [[1, 1], [3, 3], [5, 7], [INT_MAX, 29887], [0, 0]] },
  // The queue is capped at somaxconn.
  { option: 'TCP_FASTOPEN', on: ['tcp4-listener', 'tcp6-listener'], values: [[16, 16], [INT_MAX, SOMAXCONN], [0, 0]] },
  { option: 'TCP_CONGESTION', on: TCP, values: [['reno', 'reno']] },
  // On TCP the kernel keeps the two ECN bits for itself (0xff reads back as 0xfc); UDP takes all 8.
  { option: 'IP_TOS', on: ['tcp4-listener', 'tcp4'], values: [[0x10, 0x10], [0xb8, 0xb8], [0xff, 0xfc], [0, 0]] },
  { option: 'IP_TOS', on: ['udp4'], values: [[0xff, 0xff], [0x10, 0x10], [0, 0]] },
  { option: 'IP_TTL', on: ['tcp4-listener', 'tcp4', 'udp4'], values: [[1, 1], [64, 64], [255, 255]] },
  { option: 'IP_FREEBIND', on: ['tcp4-listener', 'tcp4', 'udp4'], values: BOOLS },
  { option: 'IP_TRANSPARENT', on: ['tcp4-listener', 'tcp4', 'udp4'], values: BOOLS, privileged: true },
]

for (const c of CASES) {
  const title = `${c.option}: set and read back on ${c.on.join(', ')}${c.privileged ? ' (as root)' : ''}`
  const register = c.privileged && !IS_ROOT ? test.skip.bind(test) : test.serial.bind(test)
  register(c.privileged && !IS_ROOT ? `${title} (skipped: not root)` : title, async (t) => {
    await scoped(t, (s) => {
      for (const kind of c.on) {
        const fd = s.socket(kind)
        for (const [value, expected] of c.values) {
          sockets.setOption(fd, c.option, value as never)
          t.is(sockets.getOption(fd, c.option), expected as never, `${kind}: ${c.option} = ${JSON.stringify(value)}`)
        }
      }
    })
  })
}

test.serial('SO_RCVBUF / SO_SNDBUF 0: raised to the kernel\'s minimum, not refused', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('udp4')
    sockets.setOption(fd, 'SO_RCVBUF', 0)
    sockets.setOption(fd, 'SO_SNDBUF', 0)
    const recv = sockets.getOption(fd, 'SO_RCVBUF')
    const send = sockets.getOption(fd, 'SO_SNDBUF')
    t.true(recv > 0 && recv < 65536, `receive minimum ${recv}`)
    t.true(send > 0 && send < 65536, `send minimum ${send}`)
  })
})

test.serial('SO_BINDTODEVICE reads \'\' while unbound; an unknown interface → ENODEV', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('udp4')
    t.is(sockets.getOption(fd, 'SO_BINDTODEVICE'), '')
    throwsCode(t, () => sockets.setOption(fd, 'SO_BINDTODEVICE', 'nosuchif0'), 'ENODEV', 'unknown interface')
    t.is(sockets.getOption(fd, 'SO_BINDTODEVICE'), '', 'still unbound')
  })
})

test.serial('TCP_CONGESTION: an unknown algorithm → ENOENT and the algorithm stays; the error names the option', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('tcp4')
    sockets.setOption(fd, 'TCP_CONGESTION', 'reno')
    const err = throwsCode(t, () => sockets.setOption(fd, 'TCP_CONGESTION', 'no-such-cc'), 'ENOENT', 'unknown algorithm')
    t.regex(err!.message, /TCP_CONGESTION/)
    t.is((err as any).syscall, 'setsockopt')
    t.is(sockets.getOption(fd, 'TCP_CONGESTION'), 'reno')
  })
})

test.serial('IPV6_V6ONLY: reads back what listenTcp set; after bind the kernel refuses a change (EINVAL)', async (t) => {
  await scoped(t, (s) => {
    // ::ffff:127.0.0.1 (v4-mapped, loopback) keeps what was asked; binding a specific IPv6
    // address such as ::1 makes the kernel set the option itself, whatever was asked.
    for (const [host, only, expected] of [['::ffff:127.0.0.1', false, false], ['::1', true, true], ['::1', false, true]] as const) {
      const fd = s.keep(sockets.listenTcp({ host, ipv6Only: only }))
      t.is(sockets.getOption(fd, 'IPV6_V6ONLY'), expected, `${host}, ipv6Only ${only}`)
      throwsCode(t, () => sockets.setOption(fd, 'IPV6_V6ONLY', !expected), 'EINVAL', `${host}: a change after bind`)
      t.is(sockets.getOption(fd, 'IPV6_V6ONLY'), expected, 'unchanged')
    }
    t.is(sockets.getOption(s.socket('udp6'), 'IPV6_V6ONLY'), true, 'a UDP socket bound to ::1')
    // The sockets helpers make only bound sockets; the round trip on an unbound one is the core's
    // unit test (cargo test: sys::sockopt::tests::ipv6_only_before_bind_only).
  })
})

// ---------------------------------------------------------------------------------------------
// Values at and past their limits

const INTEGER_RANGES: [SocketOptionName, number, number][] = [
  ['SO_RCVBUF', 0, INT_MAX],
  ['SO_SNDBUF', 0, INT_MAX],
  ['SO_MARK', 0, INT_MAX],
  ['TCP_KEEPIDLE', 1, 32767],
  ['TCP_KEEPINTVL', 1, 32767],
  ['TCP_KEEPCNT', 1, 127],
  ['TCP_USER_TIMEOUT', 0, INT_MAX],
  ['TCP_DEFER_ACCEPT', 0, INT_MAX],
  ['TCP_FASTOPEN', 0, INT_MAX],
  ['IP_TOS', 0, 255],
  ['IP_TTL', 1, 255],
]

/** Values no integer option takes: not integers (TypeError) and integers out of every range (RangeError). */
const NOT_INTEGERS: unknown[] = [1.5, NaN, Infinity, -Infinity, '1', true, null, undefined, {}, [1], 1n]
const NEVER_IN_RANGE = [-1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 1e300, -1e300, Number.MAX_SAFE_INTEGER]

for (const [option, min, max] of INTEGER_RANGES) {
  test.serial(`${option}: ${min} and ${max} are taken; ${min - 1}, ${max + 1}, -1, 2^32, 1e300 RangeError; 1.5, NaN, Infinity, wrong types TypeError; nothing changes`, async (t) => {
    await scoped(t, (s) => {
      const fd = s.socket('tcp4-listener')
      for (const value of [min, max]) {
        if (option === 'SO_MARK' && !IS_ROOT) throwsCode(t, () => sockets.setOption(fd, option, value), 'EPERM', 'not root')
        else t.notThrows(() => sockets.setOption(fd, option, value), `${option} = ${value}`)
      }
      const before = sockets.getOption(fd, option)
      for (const value of [min - 1, max + 1, ...NEVER_IN_RANGE]) {
        t.throws(() => sockets.setOption(fd, option, value), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any, `${option} = ${value}`)
      }
      for (const value of NOT_INTEGERS) {
        t.throws(() => sockets.setOption(fd, option, value as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any, `${option} = ${String(value)}`)
      }
      t.is(sockets.getOption(fd, option), before, 'no refused value reached the socket')
    })
  })
}

test.serial('booleans: only true and false', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('tcp4')
    for (const option of ['SO_KEEPALIVE', 'SO_REUSEPORT', 'TCP_NODELAY', 'IP_FREEBIND', 'IP_TRANSPARENT', 'IPV6_V6ONLY'] as const) {
      for (const value of [1, 0, 'true', '', null, undefined, NaN, {}, new Boolean(true)]) {
        t.throws(() => sockets.setOption(fd, option, value as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any, `${option} = ${String(value)}`)
      }
    }
    t.false(sockets.getOption(fd, 'SO_KEEPALIVE'), 'nothing was set')
  })
})

test.serial('names: ASCII without NUL, at most 15 bytes (IFNAMSIZ-1, TCP_CA_NAME_MAX-1); only SO_BINDTODEVICE may be empty', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('tcp4')
    for (const option of ['TCP_CONGESTION', 'SO_BINDTODEVICE'] as const) {
      for (const value of [42, true, null, undefined, Buffer.from('lo'), ['lo']]) {
        t.throws(() => sockets.setOption(fd, option, value as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any, `${option} = ${String(value)}`)
      }
      for (const value of ['ré', 'lo\0', '\0', 'cub\u{1F600}']) {
        t.throws(() => sockets.setOption(fd, option, value), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' } as any, `${option} = ${JSON.stringify(value)}`)
      }
      t.throws(() => sockets.setOption(fd, option, 'x'.repeat(16)), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any, `${option}: 16 bytes`)
    }
    t.throws(() => sockets.setOption(fd, 'TCP_CONGESTION', ''), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' } as any)
    // 15 bytes pass the check and reach the kernel, which knows no such name.
    throwsCode(t, () => sockets.setOption(fd, 'TCP_CONGESTION', 'x'.repeat(15)), 'ENOENT', '15-byte algorithm')
    throwsCode(t, () => sockets.setOption(fd, 'SO_BINDTODEVICE', 'x'.repeat(15)), 'ENODEV', '15-byte interface')
    t.is(sockets.getOption(fd, 'SO_BINDTODEVICE'), '', 'nothing was bound')
  })
})

// ---------------------------------------------------------------------------------------------
// Options on the wrong kind of socket: the kernel's errno, never a silent no-op

test.serial('an option of another protocol → the kernel\'s errno (ENOPROTOOPT / ENOTSUP / EINVAL)', async (t) => {
  await scoped(t, (s) => {
    const wrong: [Kind, SocketOptionName, unknown, string[]][] = [
      ['udp4', 'TCP_NODELAY', true, NOT_APPLICABLE],
      ['udp4', 'TCP_KEEPIDLE', 10, NOT_APPLICABLE],
      ['udp6', 'TCP_CONGESTION', 'reno', NOT_APPLICABLE],
      ['udp4', 'IPV6_V6ONLY', true, NOT_APPLICABLE],
      ['tcp4', 'IPV6_V6ONLY', true, NOT_APPLICABLE],
      ['tcp4-listener', 'IPV6_V6ONLY', false, NOT_APPLICABLE],
      ['unix', 'TCP_NODELAY', true, NOT_APPLICABLE],
      ['unix-listener', 'TCP_FASTOPEN', 5, NOT_APPLICABLE],
      ['unix', 'IP_TOS', 0x10, NOT_APPLICABLE],
      ['unix', 'IP_TTL', 64, NOT_APPLICABLE],
      ['unix', 'IPV6_V6ONLY', true, NOT_APPLICABLE],
      // SO_REUSEPORT is for IP sockets only (Linux refuses it on UNIX sockets).
      ['unix-listener', 'SO_REUSEPORT', true, NOT_APPLICABLE],
      // A Fast Open queue belongs to a listener (or a socket not yet connected).
      ['tcp4', 'TCP_FASTOPEN', 16, ['EINVAL']],
    ]
    for (const [kind, option, value, codes] of wrong) {
      const fd = s.socket(kind)
      const err = throwsCode(t, () => sockets.setOption(fd, option, value as never), codes, `setOption ${option} on ${kind}`)
      t.is((err as any)?.syscall, 'setsockopt')
    }
    for (const [kind, option] of [['udp4', 'TCP_NODELAY'], ['udp4', 'TCP_CONGESTION'], ['tcp4', 'IPV6_V6ONLY'], ['unix', 'TCP_KEEPCNT'], ['unix', 'IP_TOS']] as [Kind, SocketOptionName][]) {
      const fd = s.socket(kind)
      const err = throwsCode(t, () => sockets.getOption(fd, option), NOT_APPLICABLE, `getOption ${option} on ${kind}`)
      t.is((err as any)?.syscall, 'getsockopt')
    }
  })
})

test.serial('fd checks: closed or out of range → EBADF, a pipe → ENOTSOCK, not a non-negative integer → TypeError', async (t) => {
  await scoped(t, (s) => {
    for (const fd of [closedFd(), 2 ** 31, 65000]) {
      throwsCode(t, () => sockets.setOption(fd, 'TCP_NODELAY', true), 'EBADF', `setOption on ${fd}`)
      throwsCode(t, () => sockets.getOption(fd, 'TCP_NODELAY'), 'EBADF', `getOption on ${fd}`)
    }
    const fifo = path.join(os.tmpdir(), `rs-${process.pid}-sockopt.fifo`)
    fs.rmSync(fifo, { force: true })
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed')
    const pipe = fs.openSync(fifo, fs.constants.O_RDWR) // a FIFO opened both ways does not block
    try {
      t.true(fs.fstatSync(pipe).isFIFO())
      throwsCode(t, () => sockets.setOption(pipe, 'SO_RCVBUF', 65536), 'ENOTSOCK', 'setOption on a pipe')
      throwsCode(t, () => sockets.getOption(pipe, 'SO_RCVBUF'), 'ENOTSOCK', 'getOption on a pipe')
    } finally {
      fs.closeSync(pipe)
      fs.rmSync(fifo, { force: true })
    }
    const fd = s.socket('tcp4')
    for (const bad of [-1, 1.5, '3', null, undefined, NaN]) {
      t.throws(() => sockets.setOption(bad as never, 'TCP_NODELAY', true), { instanceOf: TypeError }, `fd ${String(bad)}`)
      t.throws(() => sockets.getOption(bad as never, 'TCP_NODELAY'), { instanceOf: TypeError }, `fd ${String(bad)}`)
    }
    t.false(sockets.getOption(fd, 'TCP_NODELAY'))
  })
})

// ---------------------------------------------------------------------------------------------
// listenTcp / listenUnix: recvBufferSize and sendBufferSize

test.serial('listenTcp: recvBufferSize / sendBufferSize are set before listen and read back doubled, past rmem_max only with CAP_NET_ADMIN', async (t) => {
  await scoped(t, (s) => {
    for (const host of ['127.0.0.1', '::1']) {
      const fd = s.keep(sockets.listenTcp({ host, recvBufferSize: 65536, sendBufferSize: 32768 }))
      t.true(sockets.info(fd).listening)
      t.is(sockets.getOption(fd, 'SO_RCVBUF'), 131072)
      t.is(sockets.getOption(fd, 'SO_SNDBUF'), 65536)
    }
    // As far as the process may: past net.core.rmem_max with CAP_NET_ADMIN (SO_RCVBUFFORCE, as root
    // here), capped at it otherwise (the uid 65534 test below); the same rule as bindUdp's.
    const capped = s.keep(sockets.listenTcp({ host: '127.0.0.1', recvBufferSize: INT_MAX, sendBufferSize: 0 }))
    if (IS_ROOT) t.true(sockets.getOption(capped, 'SO_RCVBUF') as number > 2 * RMEM_MAX, 'past net.core.rmem_max with CAP_NET_ADMIN')
    else t.is(sockets.getOption(capped, 'SO_RCVBUF'), 2 * RMEM_MAX, 'capped at net.core.rmem_max')
    t.true(sockets.getOption(capped, 'SO_SNDBUF') > 0, 'raised to the minimum')
    const plain = s.keep(sockets.listenTcp({ host: '127.0.0.1', recvBufferSize: undefined }))
    t.true(sockets.getOption(plain, 'SO_RCVBUF') > 0, 'undefined keeps the default')
  })
})

test.serial('listenUnix: recvBufferSize / sendBufferSize on the listening socket; the backlog stays optional', async (t) => {
  await scoped(t, (s) => {
    const fd = s.keep(sockets.listenUnix(s.path('sized'), undefined, { recvBufferSize: 65536, sendBufferSize: 32768 }))
    t.true(sockets.info(fd).listening)
    t.is(sockets.getOption(fd, 'SO_RCVBUF'), 131072)
    t.is(sockets.getOption(fd, 'SO_SNDBUF'), 65536)
    const withBacklog = s.keep(sockets.listenUnix(s.path('sized'), 16, { sendBufferSize: 16384 }))
    t.is(sockets.getOption(withBacklog, 'SO_SNDBUF'), 32768)
    const abstract = s.keep(sockets.listenUnix(`\0rs-${process.pid}-sized`, 8, {}))
    t.true(sockets.info(abstract).listening)
  })
})

test.serial('listenTcp / listenUnix: sizes are checked as SO_RCVBUF / SO_SNDBUF values, before anything is opened', async (t) => {
  await scoped(t, (s) => {
    const p = s.path('refused')
    for (const key of ['recvBufferSize', 'sendBufferSize']) {
      for (const value of [-1, 2 ** 31, 1e300]) {
        t.throws(() => sockets.listenTcp({ host: '127.0.0.1', [key]: value }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any, `${key} ${value}`)
        t.throws(() => sockets.listenUnix(p, 8, { [key]: value }), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any, `${key} ${value}`)
      }
      for (const value of [1.5, NaN, Infinity, '65536', null, true]) {
        t.throws(() => sockets.listenTcp({ host: '127.0.0.1', [key]: value } as any), { instanceOf: TypeError }, `${key} ${String(value)}`)
        t.throws(() => sockets.listenUnix(p, 8, { [key]: value } as any), { instanceOf: TypeError }, `${key} ${String(value)}`)
      }
    }
    t.throws(() => sockets.listenUnix(p, 8, 'big' as any), { instanceOf: TypeError })
    t.false(fs.existsSync(p), 'no socket file was made')
  })
})

// ---------------------------------------------------------------------------------------------
// transport.setOption / getOption, both reactor modes

/** Runs `body` with a Reactor of `mode` and a Scope; closes both, then checks that nothing reached
 *  onError and that no fd is left. */
async function withReactor(t: ExecutionContext, mode: Mode, body: (r: Reactor, s: Scope) => Promise<void>) {
  const before = fdList()
  const reported: unknown[] = []
  const r = new Reactor({ thread: mode.thread, onError: (e) => reported.push(e) })
  const scope = new Scope()
  try {
    await body(r, scope)
  } finally {
    await within(r.close(), 'reactor.close()')
    scope.close()
  }
  t.deepEqual(reported, [], 'nothing reported to onError')
  t.deepEqual(await settleFds(before), [], 'no fd left behind')
}

/**
 * Both ends of one TCP connection in `r`: the client end adopted with adoptStreamConnection (the
 * caller keeps its fd, the same socket) and the server end accepted by a port of `r`, on a
 * listener made with recvBufferSize 65536.
 */
async function tcpTransports(r: Reactor, s: Scope, host: '127.0.0.1' | '::1') {
  const family = host === '::1' ? AddressFamily.INET6 : AddressFamily.INET
  const listener = s.keep(sockets.listenTcp({ host, recvBufferSize: 65536 }))
  const callerFd = s.keep(sockets.connectTcp(host, portOf(listener)))
  const adopted = r.adoptStreamConnection(callerFd, family, new RecFactory(Rec)) as Rec
  const factory = new RecFactory(Rec)
  const port = r.adoptStreamPort(listener, family, factory)
  await factory.waitBuilt(1) // the connection callerFd made, waiting in the listener's queue
  await waitUntil(() => factory.built[0].transport !== undefined, 'the accepted connection made')
  return {
    adopted: adopted.transport as IStreamTransport,
    accepted: (factory.built[0] as Rec).transport as IStreamTransport,
    callerFd,
    port,
  }
}

/** The cases that apply to a TCP connection. The IP_* ones apply to IPv6 sockets too (Linux keeps
 *  them for the socket's IPv4-mapped traffic), with the same values. */
const CONNECTION_CASES = CASES.filter((c) => c.on.includes('tcp4') && (!c.privileged || IS_ROOT))

for (const mode of MODES) {
  test.serial(`[${mode.name}] transport.setOption / getOption: every option a TCP connection takes, on an adopted and an accepted connection (IPv4, IPv6)`, async (t) => {
    await withReactor(t, mode, async (r, s) => {
      for (const host of ['127.0.0.1', '::1'] as const) {
        const { adopted, accepted, callerFd, port } = await tcpTransports(r, s, host)
        t.is(accepted.getOption('SO_RCVBUF'), 131072, "the accepted connection inherits the listener's recvBufferSize")
        t.is(CONNECTION_CASES.length, IS_ROOT ? 16 : 14)
        for (const [which, transport] of [['adopted', adopted], ['accepted', accepted]] as const) {
          for (const c of CONNECTION_CASES) {
            for (const [value, expected] of c.values) {
              transport.setOption(c.option, value as never)
              t.is(transport.getOption(c.option), expected as never, `${which} ${host}: ${c.option} = ${JSON.stringify(value)}`)
            }
          }
          if (host === '::1') {
            // The client end keeps the system default; the accepted end inherits the listener's,
            // which the kernel set when it was bound to ::1.
            t.is(transport.getOption('IPV6_V6ONLY'), which === 'accepted' || sysctl('net/ipv6/bindv6only') === 1)
            throwsCode(t, () => transport.setOption('IPV6_V6ONLY', true), 'EINVAL', `${which}: IPV6_V6ONLY after bind`)
          } else {
            throwsCode(t, () => transport.setOption('IPV6_V6ONLY', true), NOT_APPLICABLE, `${which}: IPV6_V6ONLY on IPv4`)
            throwsCode(t, () => transport.getOption('IPV6_V6ONLY'), NOT_APPLICABLE, `${which}: IPV6_V6ONLY on IPv4`)
          }
          throwsCode(t, () => transport.setOption('TCP_FASTOPEN', 16), 'EINVAL', `${which}: TCP_FASTOPEN on a connection`)
        }
        // The adopted transport acts on the caller's socket: its fd sees the change, and back.
        adopted.setOption('TCP_KEEPIDLE', 42)
        t.is(sockets.getOption(callerFd, 'TCP_KEEPIDLE'), 42)
        sockets.setOption(callerFd, 'TCP_KEEPCNT', 5)
        t.is(adopted.getOption('TCP_KEEPCNT'), 5)
        await port.stopListening()
      }
    })
  })

  test.serial(`[${mode.name}] transport options on UNIX connections: SOL_SOCKET ones apply, TCP and IP ones give the kernel's errno`, async (t) => {
    await withReactor(t, mode, async (r, s) => {
      const [mine, theirs] = sockets.socketPair()
      s.keep(mine)
      s.keep(theirs)
      const adopted = (r.adoptStreamConnection(mine, AddressFamily.UNIX, new RecFactory(Rec)) as Rec).transport as IStreamTransport
      // The listener's sizes stay its own: Linux gives accepted UNIX connections the defaults.
      const unixPath = s.path('accept')
      const listener = s.keep(sockets.listenUnix(unixPath, 8, { sendBufferSize: 16384 }))
      const factory = new RecFactory(Rec)
      const port = r.adoptStreamPort(listener, AddressFamily.UNIX, factory)
      const client = await nodeClient(unixPath)
      await factory.waitBuilt(1)
      await waitUntil(() => factory.built[0].transport !== undefined, 'the accepted connection made')
      const accepted = (factory.built[0] as Rec).transport as IStreamTransport
      t.is(accepted.getOption('SO_SNDBUF'), sockets.getOption(theirs, 'SO_SNDBUF'), 'an accepted UNIX connection has the default send buffer')
      for (const transport of [adopted, accepted]) {
        transport.setOption('SO_SNDBUF', 65536)
        t.is(transport.getOption('SO_SNDBUF'), 131072)
        transport.setOption('SO_RCVBUF', 65536)
        t.is(transport.getOption('SO_RCVBUF'), 131072)
        transport.setOption('SO_KEEPALIVE', true)
        t.true(transport.getOption('SO_KEEPALIVE'))
        for (const [option, value] of [['TCP_NODELAY', true], ['TCP_KEEPIDLE', 5], ['TCP_CONGESTION', 'reno'], ['IP_TOS', 0x10], ['IP_TTL', 9], ['IPV6_V6ONLY', true], ['SO_REUSEPORT', true]] as [SocketOptionName, unknown][]) {
          throwsCode(t, () => transport.setOption(option, value as never), NOT_APPLICABLE, `${option} on UNIX`)
        }
        throwsCode(t, () => transport.getOption('TCP_NODELAY'), NOT_APPLICABLE, 'getOption TCP_NODELAY on UNIX')
      }
      t.is(sockets.getOption(mine, 'SO_SNDBUF'), 131072, "the caller's fd names the same socket")
      client.destroy()
      await port.stopListening()
    })
  })

  test.serial(`[${mode.name}] transport.setOption / getOption: the same argument checks; a closed connection → EBADF`, async (t) => {
    await withReactor(t, mode, async (r, s) => {
      const { adopted, accepted, port } = await tcpTransports(r, s, '127.0.0.1')
      t.throws(() => adopted.setOption('SO_LINGER' as any, 1 as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' } as any)
      t.throws(() => adopted.getOption(7 as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
      t.throws(() => adopted.setOption('IP_TTL', 0), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any)
      t.throws(() => adopted.setOption('IP_TTL', 1.5), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
      t.throws(() => adopted.setOption('TCP_NODELAY', 1 as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
      t.throws(() => adopted.setOption('TCP_CONGESTION', 'x'.repeat(16)), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any)
      throwsCode(t, () => adopted.setOption('TCP_CONGESTION', 'no-such-cc'), 'ENOENT', 'unknown algorithm')
      adopted.abortConnection()
      throwsCode(t, () => adopted.setOption('TCP_NODELAY', true), 'EBADF', 'setOption after abortConnection')
      throwsCode(t, () => adopted.getOption('TCP_NODELAY'), 'EBADF', 'getOption after abortConnection')
      await port.stopListening()
      await within(r.close(), 'reactor.close()')
      throwsCode(t, () => accepted.getOption('SO_RCVBUF'), 'EBADF', 'getOption after reactor.close()')
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Privileges: SO_MARK and IP_TRANSPARENT need CAP_NET_ADMIN (or CAP_NET_RAW). As root they work
// (the round trips above); as uid 65534 the kernel answers EPERM.

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']
const nobodyDir = IS_ROOT && hasCommand('setpriv') ? packageCopyForNobody() : null
const nobodyProbe = nobodyDir === null ? null : spawnSync('setpriv', [...NOBODY, process.execPath, '-e', `require(${JSON.stringify(nobodyDir)})`], { encoding: 'utf8' })
const canSwitchUid = nobodyProbe?.status === 0
const whyNot = nobodyDir === null ? 'not root or no setpriv' : `uid 65534 cannot load the package from ${nobodyDir}: ${nobodyProbe?.stderr.split('\n')[0]}`
const asOtherUid = (title: string, impl: Implementation<[]>) =>
  canSwitchUid ? test.serial(title, impl) : test.skip(`${title} (skipped: ${whyNot})`, impl)

/** package.json, dist/ and native/, copied into a fresh world-readable folder. */
function packageCopyForNobody(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-socket-sockopt-'))
  test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const entry of ['package.json', 'dist', 'native']) fs.cpSync(path.join(process.cwd(), entry), path.join(dir, entry), { recursive: true })
  fs.chmodSync(dir, 0o755)
  return dir
}

/** What uid 65534 gets: each attempt's error code ('ok' when it worked), and values read back. */
const UNPRIVILEGED = `
const { sockets } = require(process.argv[1])
const out = { uid: process.getuid() }
const attempt = (key, call) => { try { call(); out[key] = 'ok' } catch (err) { out[key] = err.code } }
const tcp = sockets.listenTcp({ host: '127.0.0.1' })
const udp = sockets.bindUdp({ host: '127.0.0.1' })
const conn = sockets.connectTcp('127.0.0.1', sockets.info(tcp).local.port)
for (const [name, fd] of [['tcp', tcp], ['udp', udp], ['conn', conn]]) {
  attempt('SO_MARK ' + name, () => sockets.setOption(fd, 'SO_MARK', 7))
  attempt('IP_TRANSPARENT ' + name, () => sockets.setOption(fd, 'IP_TRANSPARENT', true))
  out['SO_MARK read ' + name] = sockets.getOption(fd, 'SO_MARK')
  out['IP_TRANSPARENT read ' + name] = sockets.getOption(fd, 'IP_TRANSPARENT')
}
// Binding to a device is allowed once; changing the binding needs CAP_NET_RAW.
attempt('SO_BINDTODEVICE lo', () => sockets.setOption(udp, 'SO_BINDTODEVICE', 'lo'))
attempt('SO_BINDTODEVICE clear', () => sockets.setOption(udp, 'SO_BINDTODEVICE', ''))
out['SO_BINDTODEVICE read'] = sockets.getOption(udp, 'SO_BINDTODEVICE')
// Options that need no privilege still work.
attempt('TCP_NODELAY', () => sockets.setOption(conn, 'TCP_NODELAY', true))
attempt('TCP_CONGESTION reno', () => sockets.setOption(conn, 'TCP_CONGESTION', 'reno'))
// Buffer sizes past net.core.rmem_max: capped without CAP_NET_ADMIN (listenTcp and bindUdp alike).
const big = [sockets.listenTcp({ host: '127.0.0.1', recvBufferSize: 2 ** 31 - 1 }), sockets.bindUdp({ host: '127.0.0.1', recvBufferSize: 2 ** 31 - 1 })]
out['rcvbuf listenTcp'] = sockets.getOption(big[0], 'SO_RCVBUF')
out['rcvbuf bindUdp'] = sockets.getOption(big[1], 'SO_RCVBUF')
for (const fd of [...big, conn, udp, tcp]) sockets.close(fd)
console.log('RESULT ' + JSON.stringify(out))
`

asOtherUid('SO_MARK / IP_TRANSPARENT as uid 65534 (no CAP_NET_ADMIN): EPERM, nothing set; changing SO_BINDTODEVICE: EPERM; buffer sizes capped at rmem_max', async (t) => {
  const before = fdList()
  const child = new Child(spawn('setpriv', [...NOBODY, process.execPath, '-e', UNPRIVILEGED, nobodyDir!], { stdio: ['ignore', 'pipe', 'pipe'], cwd: nobodyDir! }))
  const result = await child.wait(20000)
  t.is(result.code, 0, result.stderr)
  const out = JSON.parse(/^RESULT (.*)$/m.exec(result.stdout)![1])
  t.is(out.uid, 65534)
  for (const kind of ['tcp', 'udp', 'conn']) {
    t.is(out[`SO_MARK ${kind}`], 'EPERM', `SO_MARK on ${kind}`)
    t.is(out[`IP_TRANSPARENT ${kind}`], 'EPERM', `IP_TRANSPARENT on ${kind}`)
    t.is(out[`SO_MARK read ${kind}`], 0, 'reading needs no privilege; nothing was set')
    t.is(out[`IP_TRANSPARENT read ${kind}`], false)
  }
  t.is(out['SO_BINDTODEVICE lo'], 'ok')
  t.is(out['SO_BINDTODEVICE clear'], 'EPERM')
  t.is(out['rcvbuf listenTcp'], 2 * RMEM_MAX, 'listenTcp: capped at net.core.rmem_max without CAP_NET_ADMIN')
  t.is(out['rcvbuf bindUdp'], 2 * RMEM_MAX, 'bindUdp: the same')
  t.is(out['SO_BINDTODEVICE read'], 'lo')
  t.is(out.TCP_NODELAY, 'ok')
  t.is(out['TCP_CONGESTION reno'], 'ok')
  t.deepEqual(await settleFds(before), [], 'no fd left behind')
})

const asRoot = (title: string, impl: Implementation<[]>) => (IS_ROOT ? test.serial(title, impl) : test.skip(`${title} (skipped: not root)`, impl))

asRoot('as root SO_MARK, IP_TRANSPARENT and a change of SO_BINDTODEVICE succeed and read back', async (t) => {
  await scoped(t, (s) => {
    const fd = s.socket('tcp4')
    sockets.setOption(fd, 'SO_MARK', 0x1234)
    t.is(sockets.getOption(fd, 'SO_MARK'), 0x1234)
    sockets.setOption(fd, 'IP_TRANSPARENT', true)
    t.true(sockets.getOption(fd, 'IP_TRANSPARENT'))
    // Changing a device binding needs CAP_NET_RAW, which root has.
    sockets.setOption(fd, 'SO_BINDTODEVICE', 'lo')
    sockets.setOption(fd, 'SO_BINDTODEVICE', '')
    t.is(sockets.getOption(fd, 'SO_BINDTODEVICE'), '')
  })
})
