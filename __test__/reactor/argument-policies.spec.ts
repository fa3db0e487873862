// The argument policies every entry point shares (js/validate.ts): descriptor numbers are checked as
// doubles (nothing wraps to another fd), a timeout of Infinity or beyond what a Node timer holds is
// no deadline (never a timer that fires at once, never a number the binding cannot take), bounded
// integers say their real bounds, and UNIX paths the kernel cannot take throw synchronously.
// Both reactor modes.
import test from 'ava'
import * as net from 'node:net'
import { spawn } from 'node:child_process'
import { Reactor, sockets, AddressFamily, ConnectError } from 'reactor-socket'
import {
  MODES,
  Child,
  Rec,
  RecFactory,
  adoptablePair,
  closeFd,
  fileTeardown,
  quietPeriod,
  tmpSockPath,
  waitUntil,
  within,
  type Peer,
} from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

/** Node's warning for a timer longer than 2^31-1 ms, which it then fires after 1 ms. */
const overflowWarnings: Error[] = []
process.on('warning', (w) => {
  if (w.name === 'TimeoutOverflowWarning') overflowWarnings.push(w)
})

/** No deadline: Infinity, and delays no Node timer holds. */
const NO_DEADLINE = [Infinity, 2 ** 31, 1e300, Number.MAX_VALUE]

class FdRec extends Rec {
  fds: number[] = []
  fileDescriptorReceived(fd: number) {
    this.fds.push(fd)
  }
}

function echoServer(): Promise<net.Server> {
  const server = net.createServer((s) => s.pipe(s))
  cleanups.push(() => server.close())
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

async function adopted(r: Reactor, kind: 'unix' | 'v4'): Promise<{ p: any; peer: Peer }> {
  const x = await adoptablePair(kind, { allowHalfOpen: true })
  cleanups.push(x.cleanup)
  const p: any = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Rec))
  closeFd(x.fd)
  return { p, peer: x.peer }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)

  test.serial(`${tag} sendFileDescriptor with a number past any fd (2**32 + 1 would wrap to fd 1) throws EBADF and sends nothing`, async (t) => {
    const [a, b] = sockets.socketPair()
    const pa: any = r.adoptStreamConnection(a, AddressFamily.UNIX, new RecFactory(FdRec))
    const pb: any = r.adoptStreamConnection(b, AddressFamily.UNIX, new RecFactory(FdRec))
    closeFd(a)
    closeFd(b)
    for (const fd of [2 ** 32 + 1, 2 ** 32, 2 ** 31, 2 ** 53]) {
      t.throws(() => pa.t.sendFileDescriptor(fd), { code: 'EBADF' } as any, `sendFileDescriptor(${fd})`)
    }
    for (const fd of [-1, 1.5, NaN, Infinity]) t.throws(() => pa.t.sendFileDescriptor(fd), { instanceOf: TypeError }, `sendFileDescriptor(${fd})`)
    pa.t.write('x')
    await pb.waitText('x')
    t.deepEqual(pb.fds, [], 'no descriptor travelled with the next write')
    pa.t.loseConnection()
    await pb.waitLost()
  })

  test.serial(`${tag} connectTCP / connectUNIX with timeout Infinity or past a timer's range: connected, no early ETIMEDOUT, no 1 ms timer`, async (t) => {
    const server = await echoServer()
    const port = (server.address() as net.AddressInfo).port
    const path = tmpSockPath('inf')
    const listener = sockets.listenUnix(path)
    const unixPort = r.adoptStreamPort(listener, AddressFamily.UNIX, new RecFactory(Rec))
    closeFd(listener)
    const warned = overflowWarnings.length
    for (const timeout of NO_DEADLINE) {
      const tcp: any = await within(r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { timeout }), `connectTCP timeout ${timeout}`)
      const unix: any = await within(r.connectUNIX(path, new RecFactory(Rec), { timeout }), `connectUNIX timeout ${timeout}`)
      for (const p of [tcp, unix]) {
        t.true(p.t.connected)
        p.t.abortConnection()
      }
    }
    await unixPort.stopListening()
    t.is(overflowWarnings.length, warned, 'no timer was armed beyond what Node holds')
  })

  test.serial(`${tag} a connect that stays in progress with timeout Infinity is not rejected with ETIMEDOUT`, async (t) => {
    // A listener with a full accept queue drops further SYNs: the connect stays in progress.
    const listener = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 0 })
    cleanups.push(() => closeFd(listener))
    const port = (sockets.info(listener).local as any).port
    const fillers: net.Socket[] = []
    cleanups.push(() => fillers.forEach((s) => s.destroy()))
    let connected = 0
    for (let i = 0; i < 4; i++) fillers.push(net.connect(port, '127.0.0.1', () => connected++).on('error', () => {}))
    // One connection fills a queue of backlog 0; the kernel drops the SYNs of the rest.
    await waitUntil(() => connected >= 1, 'a filler to fill the accept queue')
    const warned = overflowWarnings.length
    const outcomes: string[] = []
    const aborts: AbortController[] = []
    const connects = NO_DEADLINE.map((timeout) => {
      const ac = new AbortController()
      aborts.push(ac)
      return r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { timeout, signal: ac.signal }).then(
        (p: any) => {
          outcomes.push(`connected (timeout ${timeout})`)
          p?.t.abortConnection()
        },
        (err) => {
          if (err instanceof ConnectError) outcomes.push(`${err.code} (timeout ${timeout})`)
        },
      )
    })
    await quietPeriod(250, 'an ETIMEDOUT from a timeout that means no deadline')
    t.deepEqual(outcomes.filter((o) => !o.startsWith('connected')), [], 'no connect failed')
    t.is(overflowWarnings.length, warned, 'no timer was armed beyond what Node holds')
    for (const ac of aborts) ac.abort(new Error('done waiting'))
    await within(Promise.all(connects), 'the aborted connects')
  })

  test.serial(`${tag} relay with idleTimeout Infinity: relays, arms no timer that re-fires every 1 ms`, async (t) => {
    const a = await adopted(r, 'unix')
    const b = await adopted(r, 'unix')
    const warned = overflowWarnings.length
    const done = r.relay(a.p.t, b.p.t, { idleTimeout: Infinity })
    a.peer.sock.write('through')
    await b.peer.waitBytes(7)
    await quietPeriod(100, 'TimeoutOverflowWarnings of an idle timer re-armed at 1 ms')
    t.is(overflowWarnings.length, warned, 'no timer was armed beyond what Node holds')
    t.is(a.p.lostReasons.length + b.p.lostReasons.length, 0, 'still relaying')
    a.peer.sock.end()
    b.peer.sock.end()
    t.deepEqual(await within(done, 'the relay to end'), { aToB: 7, bToA: 0 })
  })

  test.serial(`${tag} relay bufferSize out of range: the RangeError gives the real bounds; bad timeouts are typed`, async (t) => {
    const a = await adopted(r, 'unix')
    const b = await adopted(r, 'unix')
    for (const bufferSize of [2 ** 31, 0, -1]) {
      const err = t.throws(() => r.relay(a.p.t, b.p.t, { bufferSize }), { instanceOf: RangeError })
      t.regex(err!.message, /1\.\.2147483647/, `bufferSize ${bufferSize}`)
    }
    t.throws(() => r.relay(a.p.t, b.p.t, { bufferSize: 1.5 }), { instanceOf: TypeError })
    t.throws(() => r.relay(a.p.t, b.p.t, { idleTimeout: NaN }), { instanceOf: RangeError })
    t.throws(() => r.relay(a.p.t, b.p.t, { idleTimeout: -1 }), { instanceOf: RangeError })
    t.throws(() => r.relay(a.p.t, b.p.t, { idleTimeout: '1' as any }), { instanceOf: TypeError })
    t.throws(() => r.connectTCP('127.0.0.1', 1, new RecFactory(Rec), { timeout: NaN }), { instanceOf: RangeError })
    t.throws(() => r.connectTCP('127.0.0.1', 1, new RecFactory(Rec), { timeout: -5 }), { instanceOf: RangeError })
    t.throws(() => r.connectTCP('127.0.0.1', NaN, new RecFactory(Rec)), { instanceOf: RangeError })
    // nothing was changed by the refused calls
    a.peer.sock.write('still mine')
    await a.p.waitText('still mine')
    a.p.t.abortConnection()
    b.p.t.abortConnection()
  })

  test.serial(`${tag} connectUNIX: an empty path, a NUL inside, a path longer than sun_path throw synchronously`, async (t) => {
    const f = new RecFactory(Rec)
    t.throws(() => r.connectUNIX('', f), { instanceOf: TypeError })
    t.throws(() => r.connectUNIX('/tmp/a\0b', f), { instanceOf: TypeError })
    t.throws(() => r.connectUNIX('\0abstract\0name', f), { instanceOf: TypeError })
    // sun_path holds 108 bytes: a path takes 107 and its NUL; an abstract name all 108.
    const long = '/tmp/' + 'x'.repeat(103) // 108 bytes
    t.throws(() => r.connectUNIX(long, f), { code: 'ENAMETOOLONG' } as any)
    t.throws(() => r.connectUNIX('\0' + 'y'.repeat(108), f), { code: 'ENAMETOOLONG' } as any)
    t.throws(() => r.connectUNIX('/tmp/' + 'é'.repeat(52), f), { code: 'ENAMETOOLONG' } as any, 'bytes are counted, not characters')
    // The longest names that fit are taken, and fail as a connect does (nobody listens there).
    const fits = await t.throwsAsync(r.connectUNIX(long.slice(0, 107), f), { instanceOf: ConnectError })
    t.is(fits!.code, 'ENOENT')
    const abstract = await t.throwsAsync(r.connectUNIX('\0' + 'y'.repeat(107), f), { instanceOf: ConnectError })
    t.is(abstract!.code, 'ECONNREFUSED')
    t.throws(() => sockets.listenUnix(long), { code: 'ENAMETOOLONG' } as any)
    t.throws(() => sockets.listenUnix('/tmp/a\0b'), { instanceOf: TypeError })
  })
}

test('handoff.take with a timeout past a timer\'s range: no deadline, no abort of the process (checked in a child)', async (t) => {
  const missing = tmpSockPath('take-missing')
  const silent = tmpSockPath('take-silent')
  const child = new Child(
    spawn(
      process.execPath,
      [
        '-e',
        `
        const { handoff, sockets } = require(${JSON.stringify(process.cwd())})
        const timeouts = [1e300, Number.MAX_VALUE, 2 ** 31, Infinity]
        Promise.allSettled(timeouts.map((timeout) => handoff.take(${JSON.stringify(missing)}, { timeout }))).then((results) => {
          console.log('MISSING ' + results.map((r) => r.status + ':' + (r.reason && r.reason.code)).join(' '))
          // A listener that never answers: with no deadline the take is still waiting later on.
          const fd = sockets.listenUnix(${JSON.stringify(silent)})
          let settled = 'pending'
          handoff.take(${JSON.stringify(silent)}, { timeout: 1e300 }).then(() => (settled = 'taken'), (e) => (settled = e.code))
          setTimeout(() => {
            console.log('SILENT ' + settled)
            require('node:fs').rmSync(${JSON.stringify(silent)}, { force: true })
            process.exit(0)
          }, 300)
        })
        `,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  )
  const exit = await child.wait()
  t.is(exit.signal, null, `the child was not aborted (stderr: ${exit.stderr})`)
  t.is(exit.code, 0, exit.stderr)
  t.regex(exit.stdout, /^MISSING rejected:ENOENT rejected:ENOENT rejected:ENOENT rejected:ENOENT$/m)
  t.regex(exit.stdout, /^SILENT pending$/m)
})
