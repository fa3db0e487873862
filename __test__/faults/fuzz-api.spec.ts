// Property-based tests (fast-check) over the public API: every public function called with wrong
// types, out-of-range numbers, closed or foreign fds, wrong-family addresses, oversized datagrams and
// calls in the wrong state. Each call either succeeds, or throws the typed error the contract names
// (checked against a model of the adoption rules), never crashes, and a failing call leaves
// /proc/self/fd exactly as it was. Both reactor modes; bounded numRuns. Serial: compares the fd table.
import test from 'ava'
import fc from 'fast-check'
import * as assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import {
  Reactor,
  AddressFamily,
  SocketType,
  ServerFactory,
  UnsupportedAddressFamily,
  UnsupportedSocketType,
  InvalidAddressError,
  MessageLengthError,
  ConnectionAborted,
  sockets,
} from 'reactor-socket'
import {
  MODES,
  fdList,
  linkOf,
  taskCount,
  closeTracked,
  waitUntil,
  udpPeer,
  warmThreadPool,
  adoptablePair,
  Rec,
  DgramRec,
  inCall,
  quietPeriod,
} from '../helpers.js'

const SEED = Number(process.env.FC_SEED ?? Date.now() % 1_000_000)
const RUNS = Number(process.env.FC_RUNS ?? 100)
const params = (numRuns = RUNS) => ({ numRuns, seed: SEED })

/**
 * Checks an fc property as an ava assertion: it held for every one of `numRuns` generated cases
 * (a failure reports fast-check's counterexample).
 */
async function holds(t: any, property: fc.IAsyncProperty<any>, numRuns: number): Promise<void> {
  const details = await fc.check(property, params(numRuns))
  t.false(details.failed, fc.defaultReportMessage(details) ?? 'the property failed')
  t.is(details.numRuns, numRuns, 'every generated case ran')
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-fuzz-'))
let server: net.Server
let server6: net.Server
const accepted = new Set<net.Socket>()

test.before(async (t) => {
  t.log(`fast-check seed ${SEED} (FC_SEED=${SEED} to replay), ${RUNS} runs per property`)
  await warmThreadPool()
  const listen = (host: string) =>
    new Promise<net.Server>((res) => {
      const s = net.createServer((c) => {
        accepted.add(c)
        c.on('error', () => {})
        c.on('close', () => accepted.delete(c))
      })
      s.listen(0, host, () => res(s))
    })
  server = await listen('127.0.0.1')
  server6 = await listen('::1')
})
test.after.always(() => {
  for (const c of accepted) c.destroy()
  server?.close()
  server6?.close()
  closeTracked()
  fs.rmSync(tmp, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// Descriptors to call with, and the model of what the contract says about them

type Kind =
  | 'tcp4-listen'
  | 'tcp6-listen'
  | 'unix-listen'
  | 'tcp4-conn'
  | 'tcp6-conn'
  | 'unix-conn'
  | 'udp4'
  | 'udp6'
  | 'file'
  | 'devnull'
  | 'closed'
  | 'huge'
const KINDS: Kind[] = ['tcp4-listen', 'tcp6-listen', 'unix-listen', 'tcp4-conn', 'tcp6-conn', 'unix-conn', 'udp4', 'udp6', 'file', 'devnull', 'closed', 'huge']

interface Facts {
  open: boolean
  socket: boolean
  family?: number
  type?: number
  listening?: boolean
  connected?: boolean
}
const FACTS: Record<Kind, Facts> = {
  'tcp4-listen': { open: true, socket: true, family: AddressFamily.INET, type: SocketType.STREAM, listening: true, connected: false },
  'tcp6-listen': { open: true, socket: true, family: AddressFamily.INET6, type: SocketType.STREAM, listening: true, connected: false },
  'unix-listen': { open: true, socket: true, family: AddressFamily.UNIX, type: SocketType.STREAM, listening: true, connected: false },
  'tcp4-conn': { open: true, socket: true, family: AddressFamily.INET, type: SocketType.STREAM, listening: false, connected: true },
  'tcp6-conn': { open: true, socket: true, family: AddressFamily.INET6, type: SocketType.STREAM, listening: false, connected: true },
  'unix-conn': { open: true, socket: true, family: AddressFamily.UNIX, type: SocketType.STREAM, listening: false, connected: true },
  udp4: { open: true, socket: true, family: AddressFamily.INET, type: SocketType.DGRAM },
  udp6: { open: true, socket: true, family: AddressFamily.INET6, type: SocketType.DGRAM },
  file: { open: true, socket: false },
  devnull: { open: true, socket: false },
  closed: { open: false, socket: false },
  huge: { open: false, socket: false },
}

let unixN = 0
/** Makes a fresh fd of the kind; returns it and a cleanup that closes everything it made. */
function materialize(kind: Kind): { fd: number; cleanup: () => void } {
  const own: number[] = []
  const mk = (fd: number) => (own.push(fd), fd)
  const cleanup = () => own.forEach((fd) => {
    try {
      sockets.close(fd)
    } catch {}
  })
  switch (kind) {
    case 'tcp4-listen':
      return { fd: mk(sockets.listenTcp({ host: '127.0.0.1', port: 0 })), cleanup }
    case 'tcp6-listen':
      return { fd: mk(sockets.listenTcp({ host: '::1', port: 0 })), cleanup }
    case 'unix-listen': {
      const p = path.join(tmp, `l${++unixN}.sock`)
      const fd = mk(sockets.listenUnix(p))
      return { fd, cleanup: () => (cleanup(), fs.rmSync(p, { force: true })) }
    }
    case 'tcp4-conn':
      return { fd: mk(sockets.connectTcp('127.0.0.1', (server.address() as net.AddressInfo).port)), cleanup }
    case 'tcp6-conn':
      return { fd: mk(sockets.connectTcp('::1', (server6.address() as net.AddressInfo).port)), cleanup }
    case 'unix-conn': {
      const [a, b] = sockets.socketPair()
      mk(b)
      return { fd: mk(a), cleanup }
    }
    case 'udp4':
      return { fd: mk(sockets.bindUdp({ host: '127.0.0.1', port: 0 })), cleanup }
    case 'udp6':
      return { fd: mk(sockets.bindUdp({ host: '::1', port: 0 })), cleanup }
    case 'file': {
      const fd = fs.openSync(path.join(tmp, 'f'), 'w+')
      return { fd, cleanup: () => fs.closeSync(fd) }
    }
    case 'devnull': {
      const fd = fs.openSync('/dev/null', 'r')
      return { fd, cleanup: () => fs.closeSync(fd) }
    }
    case 'closed': {
      const fd = fs.openSync('/dev/null', 'r')
      fs.closeSync(fd)
      return { fd, cleanup: () => {} }
    }
    case 'huge':
      return { fd: 2 ** 31 - 7, cleanup: () => {} }
  }
}

type Method = 'port' | 'conn' | 'dgram'
type Expect =
  | { ok: true }
  | { type: 'TypeError' | 'RangeError' }
  | { cls: 'UnsupportedAddressFamily'; family: unknown; actualFamily?: number | undefined }
  | { cls: 'UnsupportedSocketType'; socketType: number }
  | { code: string }

const isFd = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0

/** The contract's checks, in its order (Details: "Argument checks come first and in this order"). */
function model(method: Method, fdArg: unknown, kind: Kind | null, family: unknown, mps: unknown, closed: boolean): Expect {
  if (closed) return { code: 'ERR_REACTOR_CLOSED' }
  if (!isFd(fdArg)) return { type: 'TypeError' }
  if (typeof family !== 'number') return { type: 'TypeError' }
  const supported: number[] = method === 'dgram' ? [AddressFamily.INET, AddressFamily.INET6] : [AddressFamily.INET, AddressFamily.INET6, AddressFamily.UNIX]
  if (!supported.includes(family)) return { cls: 'UnsupportedAddressFamily', family }
  // an integer that is no fd we made (e.g. 2 ** 53, from the "bad" values) is a number no open fd has
  const f = kind === null ? FACTS.huge : FACTS[kind]
  if (!f.open) return { code: 'EBADF' }
  if (!f.socket) return { code: 'ENOTSOCK' }
  const need = method === 'dgram' ? SocketType.DGRAM : SocketType.STREAM
  if (f.type !== need) return { cls: 'UnsupportedSocketType', socketType: f.type! }
  if (f.family !== family) return { cls: 'UnsupportedAddressFamily', family, actualFamily: f.family }
  if (method === 'port' && !f.listening) return { code: 'EINVAL' }
  if (method === 'conn' && !f.connected) return { code: 'ENOTCONN' }
  if (method === 'dgram' && mps !== undefined) {
    if (typeof mps !== 'number' || !Number.isInteger(mps)) return { type: 'TypeError' }
    if (mps < 1 || mps > 65535) return { type: 'RangeError' }
  }
  return { ok: true }
}

function checkError(thrown: unknown, exp: Expect, what: string) {
  assert.ok(thrown instanceof Error, `${what}: threw a non-Error ${fc.stringify(thrown)}`)
  const err: any = thrown
  if ('type' in exp) {
    assert.equal(err.constructor, exp.type === 'TypeError' ? TypeError : RangeError, `${what}: ${err}`)
  } else if ('cls' in exp && exp.cls === 'UnsupportedAddressFamily') {
    assert.ok(err instanceof UnsupportedAddressFamily, `${what}: ${err}`)
    assert.ok(Object.is(err.family, exp.family), `${what}: .family ${err.family} (given ${fc.stringify(exp.family)})`)
    if (exp.actualFamily !== undefined) assert.equal(err.actualFamily, exp.actualFamily, `${what}: .actualFamily`)
  } else if ('cls' in exp) {
    assert.ok(err instanceof UnsupportedSocketType, `${what}: ${err}`)
    assert.equal(err.socketType, exp.socketType, `${what}: .socketType`)
  } else if ('code' in exp) {
    assert.equal(err.code, exp.code, `${what}: ${err}`)
    if (exp.code !== 'ERR_REACTOR_CLOSED') assert.equal(typeof err.errno, 'number', `${what}: errno`)
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const badFd = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.double({ noInteger: true }),
  fc.constantFrom(NaN, Infinity, -Infinity, -0.5, 2 ** 53 + 0.5),
  fc.string(),
  fc.constantFrom(null, undefined, true, {}, [], [3], '3', 3n, Symbol.iterator),
  fc.object(),
)
const fdChoice = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KINDS).map((k) => ({ kind: k as Kind | null, value: undefined as unknown })) },
  { weight: 1, arbitrary: badFd.map((v) => ({ kind: null as Kind | null, value: v as unknown })) },
)
const familyArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(AddressFamily.INET, AddressFamily.INET6, AddressFamily.UNIX) },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 50 }) },
  { weight: 1, arbitrary: fc.constantFrom(NaN, 2.5, 2 ** 32 + 2, -0, Infinity) },
  { weight: 1, arbitrary: fc.constantFrom('2', null, undefined, {}, [2], true, 2n) },
)
const mpsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 65535 }) },
  { weight: 2, arbitrary: fc.integer({ min: -100000, max: 200000 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 65536, 1.5, NaN, Infinity, '8192', null, {}, 8192n) },
)

// ---------------------------------------------------------------------------------------------
// Helpers

/** A reactor whose core is already running (so a later call opens no poller fd). */
async function warmReactor(t: any, thread: boolean): Promise<Reactor> {
  const r = new Reactor({ thread, onError: () => {} })
  t.teardown(() => r.close())
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const lp = r.adoptStreamPort(fd, AddressFamily.INET, new ServerFactory())
  sockets.close(fd)
  await lp.stopListening()
  return r
}

/**
 * Runs `call`; when it throws, the fd table must be exactly what it was before the call, except
 * that `closing` (the link, e.g. 'socket:[123]', of a connection whose peer is gone) may vanish
 * meanwhile: the reactor closes its duplicate on its own time, on its I/O thread.
 */
function guarded<T>(call: () => T, closing?: string): { ok: true; value: T } | { ok: false; err: unknown } {
  const before = fdList()
  try {
    return { ok: true, value: call() }
  } catch (err) {
    const after = fdList()
    const expected = closing === undefined ? before : before.filter((e) => !e.endsWith(` -> ${closing}`) || after.includes(e))
    assert.deepEqual(after, expected, `a failing call changed the fd table (${String(err)})`)
    return { ok: false, err }
  }
}

async function settle(before: string[]) {
  await waitUntil(() => JSON.stringify(fdList()) === JSON.stringify(before), 'fd table back', 2000).catch(() => {})
  assert.deepEqual(fdList(), before, 'the fd table is back after cleanup')
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} adopt*(fd, family, factory, maxPacketSize) with arbitrary arguments: the error the rules name, nothing leaked`, async (t) => {
    const r = await warmReactor(t, mode.thread)
    const closedReactor = new Reactor({ thread: mode.thread })
    await closedReactor.close()
    const stats: Record<string, number> = {}
    await holds(t,
      fc.asyncProperty(
        fc.constantFrom<Method>('port', 'conn', 'dgram'),
        fdChoice,
        familyArb,
        mpsArb,
        fc.boolean(),
        fc.nat(19),
        fc.boolean(),
        async (method, fdc, familyGiven, mps, useClosed, closedPick, matchFamily) => {
          const useClosedReactor = useClosed && closedPick === 0 // ~5% of runs
          // half the time the family is the socket's own, so the later rules are reached too
          const family = matchFamily && fdc.kind && FACTS[fdc.kind].family !== undefined ? FACTS[fdc.kind].family : familyGiven
          const start = fdList()
          const made = fdc.kind ? materialize(fdc.kind) : null
          const fdArg = made ? made.fd : fdc.value
          const exp = model(method, fdArg, fdc.kind, family, mps, useClosedReactor)
          const rr = useClosedReactor ? closedReactor : r
          const factory = { buildProtocol: () => new Rec() }
          const res = guarded(() =>
            method === 'port'
              ? rr.adoptStreamPort(fdArg as any, family as any, factory)
              : method === 'conn'
                ? rr.adoptStreamConnection(fdArg as any, family as any, factory)
                : rr.adoptDatagramPort(fdArg as any, family as any, new DgramRec(), mps as any),
          )
          // fc.stringify, not String: a generated value may have no usable toString ({ toString: {} })
          const what = `${method}(${fdc.kind ?? fc.stringify(fdc.value)}, ${fc.stringify(family)}, ${fc.stringify(mps)})`
          const key = res.ok ? 'ok' : (res.err as any)?.code
          assert.ok(typeof key === 'string', `${what}: every error has a code, got ${res.ok ? '' : String(res.err)}`)
          stats[key] = (stats[key] ?? 0) + 1
          if ('ok' in exp) {
            assert.ok(res.ok, `${what}: expected success, got ${res.ok ? '' : String(res.err)}`)
            const v: any = res.value
            if (method === 'conn') v.transport.abortConnection()
            else await v.stopListening()
          } else {
            assert.ok(!res.ok, `${what}: expected ${JSON.stringify(exp)}, but it succeeded`)
            checkError(res.err, exp, what)
          }
          made?.cleanup()
          for (const c of accepted) c.destroy()
          await settle(start)
        },
      ),
      RUNS * 2,
    )
    t.log(`outcomes: ${JSON.stringify(stats)}`)
    // every error has a code now, the package's classes included
    for (const k of ['ok', 'ERR_INVALID_ARG_TYPE', 'ERR_UNSUPPORTED_ADDRESS_FAMILY', 'EBADF', 'ENOTSOCK', 'ERR_UNSUPPORTED_SOCKET_TYPE']) {
      t.true((stats[k] ?? 0) > 0, `the runs reached outcome ${k}`)
    }
  })

  test.serial(`${tag} a fresh Reactor (arbitrary options) and a failing adopt call open no fd and start no thread`, async (t) => {
    await holds(t,
      fc.asyncProperty(
        fc.oneof(
          fc.record({ thread: fc.constant(mode.thread) }, { requiredKeys: [] }),
          fc.record({ thread: fc.anything(), onError: fc.anything() }, { requiredKeys: [] }),
          fc.anything(),
        ),
        fc.constantFrom<Method>('port', 'conn', 'dgram'),
        fc.constantFrom<Kind>('closed', 'file', 'udp4', 'tcp4-conn', 'tcp6-listen', 'huge'),
        familyArb,
        async (options, method, kind, family) => {
          const made = materialize(kind)
          const fds = fdList()
          const tasks = taskCount()
          let r: Reactor | null = null
          try {
            r = new Reactor(options as any)
          } catch (err) {
            assert.ok(err instanceof TypeError, `new Reactor(${fc.stringify(options)}) threw ${String(err)}`)
          }
          if (r !== null) {
            const exp = model(method, made.fd, kind, family, undefined, false)
            const res = guarded(() =>
              method === 'port'
                ? r!.adoptStreamPort(made.fd, family as any, { buildProtocol: () => null })
                : method === 'conn'
                  ? r!.adoptStreamConnection(made.fd, family as any, { buildProtocol: () => null })
                  : r!.adoptDatagramPort(made.fd, family as any, new DgramRec()),
            )
            if (!res.ok) {
              checkError(res.err, exp, `${method}(${kind}, ${fc.stringify(family)})`)
              assert.deepEqual(fdList(), fds, 'a failed call on a fresh reactor opens no fd')
              assert.equal(taskCount(), tasks, 'and starts no thread')
            } else if (method === 'conn') {
              assert.equal(res.value, undefined) // declined
            } else {
              await (res.value as any).stopListening()
            }
            await r.close()
          } else {
            assert.deepEqual(fdList(), fds)
          }
          made.cleanup()
        },
      ),
      Math.ceil(RUNS / 2),
    )
  })

  test.serial(`${tag} transport.write / writeSequence with arbitrary values: bytes and strings sent in order, anything else TypeError and nothing sent`, async (t) => {
    const r = await warmReactor(t, mode.thread)
    const x = await adoptablePair('unix')
    t.teardown(x.cleanup)
    const p = r.adoptStreamConnection(x.fd, x.family, { buildProtocol: () => new Rec() }) as Rec
    sockets.close(x.fd)
    const expected: Buffer[] = []
    const chunkArb = fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      { weight: 2, arbitrary: fc.fullUnicodeString({ maxLength: 20 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 4, maxLength: 64 }).map((a) => a.subarray(1, a.length - 1)) },
      { weight: 2, arbitrary: fc.oneof(fc.int16Array(), fc.float32Array(), fc.uint8ClampedArray(), fc.uint32Array()) },
      { weight: 2, arbitrary: fc.anything() },
      { weight: 1, arbitrary: fc.constantFrom(null, undefined, 42, new ArrayBuffer(4), new DataView(new ArrayBuffer(4)), Symbol('s'), () => 'x') },
    )
    const valid = (c: unknown) => c instanceof Uint8Array || typeof c === 'string'
    const bytes = (c: any) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c.buffer, c.byteOffset, c.byteLength))
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          chunkArb.map((c) => ({ seq: false, arg: c as unknown })),
          fc.array(chunkArb, { maxLength: 5 }).map((a) => ({ seq: true, arg: a as unknown })),
          fc.anything().map((a) => ({ seq: true, arg: a as unknown })),
        ),
        async ({ seq, arg }) => {
          const res = guarded(() => inCall(() => (seq ? p.t.writeSequence(arg) : p.t.write(arg))))
          const ok = seq ? Array.isArray(arg) && arg.every(valid) : valid(arg)
          if (ok) {
            assert.ok(res.ok, `write${seq ? 'Sequence' : ''}(${fc.stringify(arg)}) threw ${res.ok ? '' : String(res.err)}`)
            for (const c of seq ? (arg as unknown[]) : [arg]) expected.push(bytes(c))
          } else if (!res.ok) {
            assert.ok(res.err instanceof TypeError, `write${seq ? 'Sequence' : ''}(${fc.stringify(arg)}) threw ${String(res.err)}`)
          } else {
            // a non-array iterable of valid chunks is fine for writeSequence
            assert.ok(seq && arg !== null && typeof arg === 'object' && Symbol.iterator in (arg as object), `write accepted ${fc.stringify(arg)}`)
            for (const c of arg as Iterable<any>) expected.push(bytes(c))
          }
        },
      ),
      params(RUNS * 2),
    )
    const all = Buffer.concat(expected)
    await x.peer.waitBytes(all.length)
    assert.ok(x.peer.data.equals(all), 'the peer got exactly the accepted writes, in order')
    t.true(p.t.connected)
    p.t.abortConnection()
    await waitUntil(() => p.lostReasons.length === 1, 'lost')
    t.true(p.reason instanceof ConnectionAborted)
  })

  for (const v6 of [false, true]) {
    test.serial(`${tag} ${v6 ? 'IPv6' : 'IPv4'} DatagramPort.write / connect with arbitrary packets and addresses: typed errors, oversized → MessageLengthError`, async (t) => {
      const r = await warmReactor(t, mode.thread)
      const sink = await udpPeer(v6 ? 'udp6' : 'udp4')
      t.teardown(() => sink.close())
      const fd = sockets.bindUdp({ host: v6 ? '::1' : '127.0.0.1', port: 0 })
      const d = new DgramRec()
      const dp = r.adoptDatagramPort(fd, v6 ? AddressFamily.INET6 : AddressFamily.INET, d)
      sockets.close(fd)
      const own = v6 ? ['::1', '0:0:0:0:0:0:0:1'] : ['127.0.0.1']
      const other = v6 ? fc.ipV4() : fc.ipV6()
      const MAX = v6 ? 65527 : 65507 // largest UDP payload on loopback
      let delivered = 0
      // Nothing is ever sent beyond loopback: the only valid literals of the port's family are its
      // own loopback address; random strings that happen to be IP literals ('::') are left out.
      const notLiteral = (h: unknown) => typeof h !== 'string' || net.isIP(h) === 0
      const hostArb = fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...own) },
        { weight: 2, arbitrary: other },
        { weight: 1, arbitrary: fc.domain() },
        { weight: 1, arbitrary: fc.string({ maxLength: 12 }).filter(notLiteral) },
        { weight: 1, arbitrary: fc.constantFrom('localhost', '', ' 127.0.0.1', '127.0.0.1 ', '::1%', '1.2.3', '[::1]') },
        { weight: 1, arbitrary: fc.anything().filter(notLiteral) },
      )
      const portArb = fc.oneof(
        { weight: 5, arbitrary: fc.constant(sink.port) },
        { weight: 1, arbitrary: fc.constantFrom(-1, 65536, 1.5, NaN, '80', null, 2 ** 32) },
      )
      const sizeArb = fc.oneof(
        { weight: 5, arbitrary: fc.integer({ min: 0, max: 512 }) },
        { weight: 1, arbitrary: fc.integer({ min: MAX - 2, max: MAX + 2 }) },
        { weight: 1, arbitrary: fc.integer({ min: 65536, max: 70000 }) },
      )
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            { weight: 6, arbitrary: sizeArb.map((n) => Buffer.alloc(n, 0x61) as unknown) },
            { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
            { weight: 1, arbitrary: fc.anything() },
          ),
          fc.oneof(
            { weight: 6, arbitrary: fc.tuple(hostArb, portArb).map((a) => a as unknown) },
            { weight: 1, arbitrary: fc.constantFrom(undefined, null, [], ['127.0.0.1'], 'x', {}) },
            { weight: 1, arbitrary: fc.anything() },
          ),
          async (packet, addr) => {
            const res = guarded(() => inCall(() => dp.write(packet as any, addr as any)))
            const what = `write(${packet instanceof Uint8Array ? `<${packet.length} bytes>` : fc.stringify(packet)}, ${fc.stringify(addr)})`
            const packetOk = packet instanceof Uint8Array || typeof packet === 'string'
            const len = typeof packet === 'string' ? Buffer.byteLength(packet) : (packet as Uint8Array)?.length
            const addrOk =
              Array.isArray(addr) && addr.length >= 2 && own.includes(addr[0] as string) && addr[1] === sink.port
            if (!packetOk) {
              assert.ok(!res.ok && res.err instanceof TypeError, `${what}: ${res.ok ? 'succeeded' : String(res.err)}`)
            } else if (!addrOk) {
              assert.ok(!res.ok, `${what}: succeeded`)
              const e: any = res.err
              assert.ok(
                e instanceof InvalidAddressError || (e instanceof Error && typeof (e as any).code === 'string'),
                `${what}: ${String(e)}`,
              )
              if (typeof (addr as any)?.[0] !== 'string' || !Array.isArray(addr)) {
                assert.ok(e instanceof InvalidAddressError, `${what}: a malformed address → InvalidAddressError, got ${String(e)}`)
              }
            } else if (len > MAX) {
              assert.ok(!res.ok && res.err instanceof MessageLengthError, `${what}: ${res.ok ? 'succeeded' : String(res.err)}`)
              assert.equal((res.err as any).code, 'EMSGSIZE')
            } else {
              assert.ok(res.ok, `${what}: ${res.ok ? '' : String(res.err)}`)
              delivered++
              // let the sink read it (a sink that never reads would have its buffer overflow)
              await sink.waitCount(delivered, 3000)
            }
          },
        ),
        params(RUNS * 2),
      )
      // every datagram that write() accepted arrived (checked as each was sent), and no other
      await quietPeriod(50, 'a datagram from a write that threw')
      t.is(sink.got.length, delivered)
      // connect() with arbitrary arguments on fresh ports
      await holds(t,
        fc.asyncProperty(hostArb, portArb, async (host, port) => {
          const ufd = sockets.bindUdp({ host: v6 ? '::1' : '127.0.0.1', port: 0 })
          const q = r.adoptDatagramPort(ufd, v6 ? AddressFamily.INET6 : AddressFamily.INET, new DgramRec())
          sockets.close(ufd)
          const res = guarded(() => q.connect(host as any, port as any))
          const ok = own.includes(host as string) && port === sink.port
          if (ok) {
            assert.ok(res.ok, `connect(${fc.stringify(host)}, ${fc.stringify(port)}): ${res.ok ? '' : String(res.err)}`)
            const again = guarded(() => q.connect(host as any, port as any))
            assert.ok(!again.ok && (again.err as any).code === 'EISCONN', 'a second connect → EISCONN')
          } else {
            assert.ok(!res.ok, `connect(${fc.stringify(host)}, ${fc.stringify(port)}) succeeded`)
            const e: any = res.err
            assert.ok(e instanceof InvalidAddressError || e instanceof TypeError || typeof e?.code === 'string', String(e))
            // unconnected still: a write without an address is an InvalidAddressError
            const w = guarded(() => q.write('x'))
            assert.ok(!w.ok && w.err instanceof InvalidAddressError)
          }
          await q.stopListening()
          await q.stopListening() // every call resolves
        }),
        Math.ceil(RUNS / 2),
      )
      await dp.stopListening()
    })
  }

  test.serial(`${tag} datagram options with arbitrary values: TypeError / RangeError / an Error with code, never a crash`, async (t) => {
    const r = await warmReactor(t, mode.thread)
    const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
    const dp = r.adoptDatagramPort(fd, AddressFamily.INET, new DgramRec())
    sockets.close(fd)
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('setTTL', 'setBroadcastAllowed', 'setLoopbackMode', 'joinGroup', 'leaveGroup', 'setOutgoingInterface'),
        fc.oneof(fc.anything(), fc.integer({ min: -300, max: 600 }), fc.ipV4(), fc.ipV6(), fc.constantFrom('224.0.0.251', '239.1.2.3', 'ff02::1', '127.0.0.1')),
        fc.oneof(fc.constant(undefined), fc.anything(), fc.constantFrom('127.0.0.1', '0.0.0.0', 'lo')),
        async (method, a, b) => {
          const res = guarded(() => (dp as any)[method](a, b))
          if (res.ok) {
            if (method === 'setTTL') assert.ok(Number.isInteger(a) && (a as number) >= 0 && (a as number) <= 255, `setTTL(${fc.stringify(a)}) accepted`)
            if (method === 'joinGroup') guarded(() => dp.leaveGroup(a as any, b as any))
            return
          }
          const e: any = res.err
          if (method === 'setTTL') {
            if (!Number.isInteger(a)) assert.ok(e instanceof TypeError, `setTTL(${fc.stringify(a)}): ${e}`)
            else assert.ok(e instanceof RangeError, `setTTL(${fc.stringify(a)}): ${e}`)
          } else if (typeof a !== 'string') {
            assert.ok(e instanceof TypeError, `${method}(${fc.stringify(a)}): ${e}`)
          } else {
            assert.ok(e instanceof InvalidAddressError || e instanceof TypeError || (e instanceof Error && typeof (e as any).code === 'string'), `${method}(${fc.stringify(a)}, ${fc.stringify(b)}): ${e}`)
          }
        },
      ),
      params(RUNS * 2),
    )
    t.true(Number.isInteger(dp.getTTL()))
    await dp.stopListening()
  })

  test.serial(`${tag} calls in the wrong state: arbitrary sequences of transport calls, then the peer or we close; connectionLost once, not re-entrant`, async (t) => {
    const r = await warmReactor(t, mode.thread)
    type Op =
      | 'write'
      | 'writeSequence'
      | 'loseConnection'
      | 'abortConnection'
      | 'loseWriteConnection'
      | 'pauseProducing'
      | 'resumeProducing'
      | 'stopProducing'
      | 'registerPush'
      | 'registerPull'
      | 'unregisterProducer'
      | 'getHost'
      | 'getPeer'
      | 'setTcpNoDelay'
      | 'getTcpKeepAlive'
      | 'bufferSize'
      | 'peerEnd'
      | 'peerDestroy'
      | 'tick'
    const ops: Op[] = ['write', 'writeSequence', 'loseConnection', 'abortConnection', 'loseWriteConnection', 'pauseProducing', 'resumeProducing', 'stopProducing', 'registerPush', 'registerPull', 'unregisterProducer', 'getHost', 'getPeer', 'setTcpNoDelay', 'getTcpKeepAlive', 'bufferSize', 'peerEnd', 'peerDestroy', 'tick']
    await holds(t,
      fc.asyncProperty(fc.constantFrom('v4', 'unix'), fc.boolean(), fc.array(fc.constantFrom(...ops), { minLength: 1, maxLength: 25 }), async (kind, halfClose, seq) => {
        const start = fdList()
        const x = await adoptablePair(kind as any)
        const p = r.adoptStreamConnection(x.fd, x.family, {
          buildProtocol: () => {
            const q = new Rec()
            if (halfClose) (q as any).readConnectionLost = () => {}
            return q
          },
        }) as Rec
        const own = linkOf(x.fd) // the connection's socket: the reactor's duplicate may close on its own
        sockets.close(x.fd)
        let registered = false
        for (const op of seq) {
          const res = guarded(() =>
            inCall(() => {
              switch (op) {
                case 'write':
                  return p.t.write('abc')
                case 'writeSequence':
                  return p.t.writeSequence(['a', Buffer.from('b')])
                case 'registerPush':
                case 'registerPull': {
                  const wasRegistered = registered && p.t.connected
                  p.t.registerProducer({ pauseProducing() {}, resumeProducing() {}, stopProducing() {} }, op === 'registerPush')
                  registered = true
                  return wasRegistered
                }
                case 'unregisterProducer':
                  registered = false
                  return p.t.unregisterProducer()
                case 'getHost':
                  return p.t.getHost()
                case 'getPeer':
                  return p.t.getPeer()
                case 'setTcpNoDelay':
                  return p.t.setTcpNoDelay(true)
                case 'getTcpKeepAlive':
                  return p.t.getTcpKeepAlive()
                case 'bufferSize':
                  return p.t.bufferSize
                case 'peerEnd':
                  return x.peer.sock.end()
                case 'peerDestroy':
                  return x.peer.sock.destroy()
                case 'tick':
                  return undefined
                default:
                  return p.t[op]()
              }
            }),
            own,
          )
          if (!res.ok) {
            const e: any = res.err
            if (op === 'registerPush' || op === 'registerPull') {
              assert.match(String(e.message), /already registered/, `${op}: ${e}`)
            } else if (op === 'getHost' || op === 'setTcpNoDelay' || op === 'getTcpKeepAlive') {
              assert.ok(['EBADF', 'ENOTSUP', 'EOPNOTSUPP'].includes(e.code), `${op}: ${e} (${e.code})`)
            } else {
              assert.fail(`${op} threw ${e} after ${seq.join(',')}`)
            }
          }
          if (op === 'tick') await delay(5) // the op itself: let I/O run between two calls
        }
        assert.ok(p.lostDepths.every((d) => d === 0), 'connectionLost never inside a call')
        p.t.abortConnection()
        x.peer.sock.destroy()
        await waitUntil(() => p.lostReasons.length === 1, `connectionLost after ${seq.join(',')}`, 3000)
        await quietPeriod(5, 'a second connectionLost')
        assert.equal(p.lostReasons.length, 1, 'exactly once')
        assert.deepEqual(p.lostDepths, [0])
        assert.ok(p.reason instanceof Error)
        x.cleanup()
        await settle(start)
      }),
      Math.ceil(RUNS / 2),
    )
  })
}

test.serial('sockets.* helpers with arbitrary arguments: a typed error with code, or an fd that is then closed; nothing leaked', async (t) => {
  const closedNumber = 987_654 // above RLIMIT_NOFILE here: never an open fd, so never closed by mistake
  const hostArb = fc.oneof(fc.constantFrom('127.0.0.1', '::1', '0.0.0.0', '::', 'localhost', '', '1.2.3.4.5', '::ffff:127.0.0.1', '127.0.0.1%lo'), fc.string({ maxLength: 10 }), fc.anything())
  const portArb = fc.oneof(fc.constant(0), fc.constantFrom(-1, 65536, 1.5, NaN, '0', null, undefined, 2 ** 31), fc.anything())
  const typed = (e: any) => e instanceof TypeError || e instanceof RangeError || (e instanceof Error && typeof (e as any).code === 'string')
  await holds(t,
    fc.asyncProperty(
      fc.oneof(
        fc.record({ f: fc.constant('listenTcp'), a: fc.oneof(fc.record({ host: hostArb, port: portArb, backlog: fc.oneof(fc.integer({ min: -2, max: 4096 }), fc.anything()), reusePort: fc.anything(), ipv6Only: fc.anything() }, { requiredKeys: [] }), fc.anything()) }),
        fc.record({ f: fc.constant('bindUdp'), a: fc.oneof(fc.record({ host: hostArb, port: portArb, reusePort: fc.anything() }, { requiredKeys: [] }), fc.anything()) }),
        fc.record({ f: fc.constant('listenUnix'), a: fc.oneof(fc.string({ maxLength: 140 }).map((s) => path.join(tmp, 'u-' + s.replace(/[\/\0]/g, '_'))), fc.anything(), fc.constant('')), b: fc.oneof(fc.constant(undefined), fc.integer({ min: -2, max: 10 }), fc.anything()) }),
        // connectTcp only to addresses that cannot reach another test's listener
        fc.record({ f: fc.constant('connectTcp'), a: fc.oneof(fc.anything(), fc.constantFrom('', 'localhost', '1.2.3.4.5', '::1%')), b: fc.oneof(portArb, fc.constant(1)) }),
        fc.record({ f: fc.constant('info'), a: fc.oneof(fc.anything(), fc.constant(closedNumber), fc.integer({ min: -5, max: 2 ** 31 })) }),
        fc.record({ f: fc.constant('close'), a: fc.oneof(fc.anything(), fc.constant(closedNumber), fc.constant(2 ** 31 - 1), fc.integer({ min: -100, max: -1 })) }),
      ),
      async ({ f, a, b }: any) => {
        if (f === 'close' && Number.isInteger(a) && a >= 0 && a !== closedNumber && a !== 2 ** 31 - 1) return // never close a real fd
        if (f === 'connectTcp' && typeof a === 'string' && (a === '127.0.0.1' || a === '::1' || a === '0.0.0.0' || a === '::')) return
        const res = guarded(() => (sockets as any)[f](a, b))
        if (res.ok) {
          if (f === 'info') {
            assert.equal(typeof (res.value as any).type, 'number')
          } else if (f !== 'close') {
            assert.ok(Number.isInteger(res.value) || Array.isArray(res.value), `${f} returned ${String(res.value)}`)
            sockets.close(res.value as number)
            if (f === 'listenUnix') fs.rmSync(a, { force: true })
          }
        } else {
          assert.ok(typed(res.err), `${f}(${fc.stringify(a)}, ${fc.stringify(b)}) threw ${String(res.err)}`)
        }
      },
    ),
    RUNS * 2,
  )
})
