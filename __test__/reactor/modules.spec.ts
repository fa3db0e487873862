// The entry points of package.json "exports": require() and import both work and give the same classes
// (the package loads once per process); a CommonJS consumer exits cleanly.
import test from 'ava'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import * as esm from 'reactor-socket'
import { fixture, child, killChildren } from '../helpers.js'

test.after.always(() => killChildren())

const NAMES = [
  'reactor', 'Reactor', 'AddressFamily', 'ServerFactory', 'Protocol', 'DatagramProtocol',
  'UnsupportedAddressFamily', 'UnsupportedSocketType', 'InvalidAddressError', 'MessageLengthError',
  'ConnectionClosed', 'ConnectionDone', 'ConnectionLost', 'ConnectionAborted',
  'IPv4Address', 'IPv6Address', 'UNIXAddress', 'SocketType', 'sockets',
] as const

test('ESM import exposes every entry point', (t) => {
  for (const n of NAMES) t.not((esm as any)[n], undefined, n)
})

test('require() in the same process gives the very same objects as import', (t) => {
  const cjs = createRequire(path.join(process.cwd(), 'package.json'))('reactor-socket')
  for (const n of NAMES) t.is(cjs[n], (esm as any)[n], `${n} is the same object`)
  t.true(cjs.reactor instanceof esm.Reactor)
})

test('a CommonJS process: require and import agree, it uses the package and exits 0', async (t) => {
  const c = child(fixture('modules.cjs'))
  const res = await c.wait()
  t.is(res.signal, null)
  t.is(res.code, 0, res.stderr)
  const out = JSON.parse(await c.line('RESULT '))
  t.deepEqual(out, { missing: [], differ: [] })
})
