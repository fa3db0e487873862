// Hostile input, round two: systemd. A LISTEN_FDS of two billion (with a matching LISTEN_PID) must
// be EINVAL, not an allocation that aborts Node; notify() to a manager that does not read must
// throw EAGAIN instead of blocking the JS thread; the README's socket-activation recipe must not
// close Node's own descriptors when LISTEN_FDS overstates what was passed. Real child processes,
// started as systemd starts a service (`sh -c 'LISTEN_PID=$$ exec node ...'`).
import test from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { SocketType } from 'reactor-socket'
import { MODES, fixture, Child, HAS_PYTHON, testIf, listenTcp4, closeTracked, nodeClient, portOf, limiter } from '../helpers.js'

const slot = limiter(3)
const kids: Child[] = []
test.after.always(() => {
  for (const k of kids) k.kill()
  closeTracked()
})

/** This process's environment without systemd's variables. */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete env[name]
  return env
}

/** node `args` started with LISTEN_PID set to its own pid and `fds` as its fds 3... */
function activated(args: string[], vars: Record<string, string>, fds: number[] = []): Child {
  const c = new Child(
    spawn('sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', ...fds],
      env: { ...baseEnv(), ...vars },
    }),
  )
  kids.push(c)
  return c
}

test('listenFds: LISTEN_FDS=2147483644 with a matching LISTEN_PID is EINVAL, not an abort', (t) => slot(async () => {
  const cases: Record<string, string>[] = [
    { LISTEN_FDS: '2147483644' },
    { LISTEN_FDS: '2147483644', LISTEN_FDNAMES: ':'.repeat(100_000) },
    { LISTEN_FDS: '9'.repeat(10_000) },
  ]
  for (const vars of cases) {
    const c = activated([fixture('systemd-listen.mjs')], vars)
    const exit = await c.wait(20000)
    t.is(exit.signal, null, `no abort (${exit.stderr.slice(0, 200)})`)
    t.is(exit.code, 0, exit.stderr.slice(0, 200))
    const result = JSON.parse(exit.stdout.split('\n').find((l) => l.startsWith('RESULT '))!.slice(7))
    t.is(result.error?.code, 'EINVAL', JSON.stringify(result.error))
    t.true(result.error.message.length < 300, 'a short message, whatever the value')
    t.deepEqual(result.env, { LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null })
  }
}))

test('listenFds: each entry says whether it is a socket', (t) => slot(async () => {
  const tcp = listenTcp4()
  const file = fs.openSync('/dev/null', 'r') // systemd passes FIFOs and files too
  t.teardown(() => fs.closeSync(file))
  const c = activated([fixture('systemd-listen.mjs')], { LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:file' }, [tcp, file])
  const result = JSON.parse(await c.line('RESULT '))
  t.like(result.fds[0], { fd: 3, name: 'web', isSocket: true, type: SocketType.STREAM, listening: true })
  t.like(result.fds[1], { fd: 4, name: 'file', isSocket: false, family: 0, type: 0, listening: false })
  await c.wait()
}))

// The README's socket-activation recipe is an excerpt of examples/systemd/server.js (checked by
// __test__/reactor/readme.spec.ts); the server runs here as written, with LISTEN_FDS=6 and one
// socket passed: fds 4..8 are then Node's own (its epoll, eventfd and pipes), and a loop that
// closed every listed number would close them.
for (const mode of MODES) {
  test(`[${mode.name}] the README's socket-activation recipe survives a LISTEN_FDS that overstates what was passed, and serves the socket`, (t) => slot(async () => {
    const tcp = listenTcp4()
    const c = activated([path.join(process.cwd(), 'examples', 'systemd', 'server.js')], { LISTEN_FDS: '6', REACTOR_THREAD: mode.thread ? '1' : '0' }, [tcp])
    await c.line('READY ')
    const peer = await nodeClient(portOf(tcp))
    peer.sock.write('still alive')
    await peer.waitText('still alive')
    peer.destroy()
    c.proc.kill('SIGTERM')
    const exit = await c.wait(10000)
    t.is(exit.signal, null, `no abort (${exit.stderr.slice(0, 300)})`)
    t.is(exit.code, 0, exit.stderr.slice(0, 300))
    t.regex(exit.stdout, /STOPPED/)
  }))
}

// notify to a manager whose queue is full: a python3 receiver that binds and never reads.
testIf(HAS_PYTHON, 'python3 is missing')('notify: a manager that does not read gets EAGAIN once its queue is full; the JS thread never waits', (t) => slot(async () => {
  const address = `@reactor-socket-test-${process.pid}-full`
  const receiver = new Child(
    spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      `s.bind("\\0" + ${JSON.stringify(address.slice(1))})`,
      'print("BOUND", flush=True)',
      'time.sleep(60)',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'pipe'] }),
  )
  kids.push(receiver)
  await receiver.line('BOUND')
  const c = new Child(
    spawn(process.execPath, ['-e', `
      const { systemd } = require(${JSON.stringify(process.cwd())})
      let ticks = 0
      const timer = setInterval(() => ticks++, 1)
      let sent = 0
      const started = Date.now()
      const send = () => {
        try {
          systemd.notify('STATUS=' + sent)
          sent++
          if (sent > 100000) return console.log('NEVER-FULL')
          setImmediate(send)
        } catch (err) {
          setTimeout(() => {
            clearInterval(timer)
            console.log('RESULT ' + JSON.stringify({ code: err.code, sent, ticks, ms: Date.now() - started }))
          }, 20)
        }
      }
      send()
    `], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...baseEnv(), NOTIFY_SOCKET: address } }),
  )
  kids.push(c)
  const exit = await c.wait(15000).catch((err) => {
    c.kill()
    throw new Error(`notify blocked the JS thread: ${err.message} (stdout: ${c.stdout})`)
  })
  const line = exit.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  t.truthy(line, exit.stdout + exit.stderr)
  const result = JSON.parse(line!.slice(7))
  t.is(result.code, 'EAGAIN')
  t.true(result.sent >= 1, 'the queue took some first')
  t.true(result.ticks > 0, 'timers kept running')
  receiver.kill()
}))
