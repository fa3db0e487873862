// Bad arguments to listenDatagramProxy and to the buffer-size options of sockets.bindUdp: every
// option at and past its limits (Infinity, 2^32, 1e300, NaN, wrong types) gives a typed error,
// synchronously, in the contract's order (the fd's rules, then the options), and leaves no fd
// behind (/proc/self/fd). Values at the limits are taken. Both reactor modes.
import test from 'ava'
import * as fs from 'node:fs'
import { AddressFamily, InvalidAddressError, Reactor, UnsupportedAddressFamily, UnsupportedSocketType, sockets } from 'reactor-socket'
import { MODES, closedFd, fdList, reactorHarness, settleFds } from '../helpers.js'

const INET = AddressFamily.INET
const INET6 = AddressFamily.INET6
const UP = { host: '127.0.0.1', port: 9 }

const typeError = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' }
const valueError = { instanceOf: TypeError, code: 'ERR_INVALID_ARG_VALUE' }
const rangeError = { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' }
const addressError = { instanceOf: InvalidAddressError, code: 'ERR_INVALID_ADDRESS' }

/** Option sets that must be refused, with the error each gets. */
const BAD_OPTIONS: [string, unknown, object][] = [
  ['no options', undefined, typeError],
  ['options not an object', 7, typeError],
  ['no upstream', {}, typeError],
  ['upstream a string', { upstream: '127.0.0.1:53' }, typeError],
  ['upstream host a name', { upstream: { host: 'localhost', port: 53 } }, addressError],
  ['upstream host not a string', { upstream: { host: 1, port: 53 } }, typeError],
  ['upstream port 0', { upstream: { host: '127.0.0.1', port: 0 } }, rangeError],
  ['upstream a UNIX path (streams only)', { upstream: { path: '/tmp/x.sock' } }, typeError],
  ['upstream port 65536', { upstream: { host: '127.0.0.1', port: 65536 } }, rangeError],
  ['upstream port 2^32', { upstream: { host: '127.0.0.1', port: 2 ** 32 } }, rangeError],
  ['upstream port NaN', { upstream: { host: '127.0.0.1', port: NaN } }, rangeError],
  ['upstream port a string', { upstream: { host: '127.0.0.1', port: '53' } }, typeError],
  ['an empty upstream list', { upstream: [] }, valueError],
  ['a bad upstream in the list', { upstream: [UP, { host: '::1', port: -1 }] }, rangeError],
  ['idleTimeout NaN', { upstream: UP, idleTimeout: NaN }, rangeError],
  ['idleTimeout -1', { upstream: UP, idleTimeout: -1 }, rangeError],
  ['idleTimeout -Infinity', { upstream: UP, idleTimeout: -Infinity }, rangeError],
  ['idleTimeout a string', { upstream: UP, idleTimeout: '100' }, typeError],
  ['maxSessions 0', { upstream: UP, maxSessions: 0 }, rangeError],
  ['maxSessions 2^32', { upstream: UP, maxSessions: 2 ** 32 }, rangeError],
  ['maxSessions 1e300', { upstream: UP, maxSessions: 1e300 }, rangeError],
  ['maxSessions NaN', { upstream: UP, maxSessions: NaN }, typeError],
  ['maxSessions 1.5', { upstream: UP, maxSessions: 1.5 }, typeError],
  ['maxSessions -Infinity', { upstream: UP, maxSessions: -Infinity }, typeError],
  ['maxSessions a string', { upstream: UP, maxSessions: '10' }, typeError],
  ['responses 0', { upstream: UP, responses: 0 }, rangeError],
  ['responses 2^32', { upstream: UP, responses: 2 ** 32 }, rangeError],
  ['responses 1e300', { upstream: UP, responses: 1e300 }, rangeError],
  ['responses NaN', { upstream: UP, responses: NaN }, typeError],
  ['responses null', { upstream: UP, responses: null }, typeError],
  ['proxyHeader v1', { upstream: UP, proxyHeader: 'v1' }, valueError],
  ['proxyHeader 2', { upstream: UP, proxyHeader: 2 }, typeError],
  ['proxyHeader true', { upstream: UP, proxyHeader: true }, typeError],
  ['sourcePortRange a number', { upstream: UP, sourcePortRange: 5000 }, typeError],
  ['sourcePortRange of one', { upstream: UP, sourcePortRange: [5000] }, valueError],
  ['sourcePortRange of three', { upstream: UP, sourcePortRange: [5000, 5001, 5002] }, valueError],
  ['sourcePortRange from 0', { upstream: UP, sourcePortRange: [0, 10] }, rangeError],
  ['sourcePortRange reversed', { upstream: UP, sourcePortRange: [6000, 5000] }, rangeError],
  ['sourcePortRange past 65535', { upstream: UP, sourcePortRange: [5000, 65536] }, rangeError],
  ['sourcePortRange to 2^32', { upstream: UP, sourcePortRange: [5000, 2 ** 32] }, rangeError],
  ['sourcePortRange NaN', { upstream: UP, sourcePortRange: [NaN, 5000] }, rangeError],
  ['sourcePortRange strings', { upstream: UP, sourcePortRange: ['5000', '5001'] }, typeError],
  ['recvBufferSize 0', { upstream: UP, recvBufferSize: 0 }, rangeError],
  ['recvBufferSize 2^31', { upstream: UP, recvBufferSize: 2 ** 31 }, rangeError],
  ['recvBufferSize 2^32', { upstream: UP, recvBufferSize: 2 ** 32 }, rangeError],
  ['recvBufferSize 1e300', { upstream: UP, recvBufferSize: 1e300 }, rangeError],
  ['recvBufferSize Infinity', { upstream: UP, recvBufferSize: Infinity }, typeError],
  ['recvBufferSize NaN', { upstream: UP, recvBufferSize: NaN }, typeError],
  ['sendBufferSize -1', { upstream: UP, sendBufferSize: -1 }, rangeError],
  ['sendBufferSize a string', { upstream: UP, sendBufferSize: '65536' }, typeError],
]

/** Option sets at the limits: taken. */
const LIMIT_OPTIONS: [string, object][] = [
  ['idleTimeout 0', { upstream: UP, idleTimeout: 0 }],
  ['idleTimeout Infinity', { upstream: UP, idleTimeout: Infinity }],
  ['idleTimeout 2^32 (no deadline, as every timeout past 2^31-1 ms)', { upstream: UP, idleTimeout: 2 ** 32 }],
  ['idleTimeout 1e300', { upstream: UP, idleTimeout: 1e300 }],
  ['maxSessions 2^32-1 and responses Infinity', { upstream: UP, maxSessions: 2 ** 32 - 1, responses: Infinity }],
  ['maxSessions Infinity and responses 1', { upstream: UP, maxSessions: Infinity, responses: 1 }],
  ['sourcePortRange [65535, 65535]', { upstream: UP, sourcePortRange: [65535, 65535] }],
  ['recvBufferSize 2^31-1 and sendBufferSize 1', { upstream: [UP, { host: '::1', port: 65535 }], recvBufferSize: 2 ** 31 - 1, sendBufferSize: 1 }],
  ["proxyHeader 'v2' with a routing function", { upstream: () => null, proxyHeader: 'v2' }],
]

for (const mode of MODES) {
  const title = (s: string) => `[${mode.name}] ${s}`

  test.serial(title('bad options: a typed error each, and nothing opened'), (t) => {
    const r = new Reactor({ thread: mode.thread })
    const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
    const before = fdList()
    for (const [what, options, error] of BAD_OPTIONS) {
      t.throws(() => r.listenDatagramProxy(fd, INET, options as never), error, what)
    }
    t.deepEqual(fdList(), before, 'no fd opened: the core never started')
    sockets.close(fd)
    return r.close()
  })

  test.serial(title("the fd's rules come first, in the contract's order"), (t) => {
    const r = new Reactor({ thread: mode.thread })
    const bad = { upstream: 'nope' } as never
    const before = fdList()
    t.throws(() => r.listenDatagramProxy(-1, INET, bad), typeError)
    t.throws(() => r.listenDatagramProxy(1.5, INET, bad), typeError)
    t.throws(() => r.listenDatagramProxy(0, AddressFamily.UNIX as number, bad), { instanceOf: UnsupportedAddressFamily })
    t.throws(() => r.listenDatagramProxy(2 ** 32 + 1, INET, bad), { code: 'EBADF' })
    t.throws(() => r.listenDatagramProxy(closedFd(), INET, bad), { code: 'EBADF' })
    const file = fs.openSync('/dev/null', 'r')
    t.throws(() => r.listenDatagramProxy(file, INET, bad), { code: 'ENOTSOCK' })
    fs.closeSync(file)
    const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
    t.throws(() => r.listenDatagramProxy(tcp, INET, bad), { instanceOf: UnsupportedSocketType })
    sockets.close(tcp)
    const v6 = sockets.bindUdp({ host: '::1', port: 0 })
    t.throws(() => r.listenDatagramProxy(v6, INET, bad), { instanceOf: UnsupportedAddressFamily })
    // Good fd, bad options: the options' error.
    t.throws(() => r.listenDatagramProxy(v6, INET6, bad), typeError)
    sockets.close(v6)
    t.deepEqual(fdList(), before)
    return r.close().then(() => t.throws(() => r.listenDatagramProxy(0, INET, bad), { code: 'ERR_REACTOR_CLOSED' }))
  })

  test.serial(title('options at their limits are taken; nothing is left after the close'), async (t) => {
    const h = reactorHarness(t, mode)
    for (const [what, options] of LIMIT_OPTIONS) {
      const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
      try {
        const port = h.r.listenDatagramProxy(fd, INET, options as never)
        t.is(port.stats().sessionsActive, 0, what)
      } finally {
        sockets.close(fd)
      }
    }
    await h.finish()
  })
}

test.serial('sockets.bindUdp: buffer sizes at and past their limits; bufferSizes reads what the kernel set', async (t) => {
  const before = fdList()
  for (const [what, value, error] of [
    ['0', 0, rangeError],
    ['2^31', 2 ** 31, rangeError],
    ['2^32', 2 ** 32, rangeError],
    ['1e300', 1e300, rangeError],
    ['Infinity', Infinity, typeError],
    ['NaN', NaN, typeError],
    ['a string', '4096', typeError],
  ] as const) {
    t.throws(() => sockets.bindUdp({ host: '127.0.0.1', port: 0, recvBufferSize: value as number }), error, `recvBufferSize ${what}`)
    t.throws(() => sockets.bindUdp({ host: '127.0.0.1', port: 0, sendBufferSize: value as number }), error, `sendBufferSize ${what}`)
  }
  const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0, recvBufferSize: 1 << 20, sendBufferSize: 1 << 16 })
  const sizes = sockets.bufferSizes(fd)
  t.true(sizes.recvBufferSize >= 1 << 20, `SO_RCVBUF ${sizes.recvBufferSize}`)
  t.is(sizes.sendBufferSize, 2 << 16, 'the kernel keeps twice what it is given')
  sockets.close(fd)
  const top = sockets.bindUdp({ host: '127.0.0.1', port: 0, recvBufferSize: 2 ** 31 - 1 })
  t.true(sockets.bufferSizes(top).recvBufferSize > 0)
  sockets.close(top)
  t.throws(() => sockets.bufferSizes(closedFd()), { code: 'EBADF' })
  const file = fs.openSync('/dev/null', 'r')
  t.throws(() => sockets.bufferSizes(file), { code: 'ENOTSOCK' })
  fs.closeSync(file)
  t.deepEqual(await settleFds(before), [])
})
