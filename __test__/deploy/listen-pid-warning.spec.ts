// Socket activation under a wrapper process (npm start, tsx, nodemon): systemd passes the sockets
// to the process it started, which spawns node instead of exec'ing it, so LISTEN_PID is not
// node's pid and systemd.listenFds() must return []. It says why, once per process, as a warning
// with code REACTOR_SOCKET_LISTEN_PID. Against the real systemd-socket-activate, with a real
// wrapper process in between (a node parent that spawns the child with the environment
// inherited); and no warning when LISTEN_PID is ours or unset.
import test from 'ava'
import { spawn } from 'node:child_process'
import { fixture, Child, listenTcp4, portOf, closeFd, hasCommand, waitUntil, nodeClient, limiter, fileTeardown } from '../helpers.js'

const { cleanups } = fileTeardown()
const slot = limiter(2)
const withActivate = hasCommand('systemd-socket-activate') ? test : test.skip
if (!hasCommand('systemd-socket-activate')) console.log('listen-pid-warning.spec: systemd-socket-activate is missing; its tests are skipped')

const CODE = 'REACTOR_SOCKET_LISTEN_PID'

interface Result {
  pid: number
  counts: number[]
  warnings: { name: string; code: string; message: string }[]
}

/** This process's environment without systemd's variables. */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET']) delete env[name]
  return env
}

function freePort(): number {
  const fd = listenTcp4()
  const port = portOf(fd)
  closeFd(fd)
  return port
}

function run(command: string, args: string[]): Child {
  const c = new Child(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: baseEnv() }))
  cleanups.push(() => c.kill())
  return c
}

/** systemd-socket-activate running `program`; the first connection makes it exec the program. */
async function activated(program: string[]): Promise<{ c: Child; activatePid: number }> {
  const port = freePort()
  const c = run('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--fdname=web', process.execPath, ...program])
  await waitUntil(() => c.stderr.includes('Listening on'), () => `systemd-socket-activate listening (stderr: ${c.stderr})`)
  const activatePid = c.proc.pid!
  const peer = await nodeClient(port)
  cleanups.push(() => peer.destroy())
  return { c, activatePid }
}

const occurrences = (text: string, what: string) => text.split(what).length - 1

withActivate('under a wrapper (LISTEN_PID names it): listenFds() returns [] and warns once, naming both pids, even when called again', (t) => slot(async () => {
  const { c, activatePid } = await activated([fixture('listen-pid-wrapper.mjs'), fixture('listen-pid-warning.mjs')])
  const wrapper = JSON.parse(await c.line('WRAPPER '))
  t.is(wrapper.pid, activatePid, 'systemd-socket-activate exec\'d the wrapper: LISTEN_PID is the wrapper\'s pid')
  const result = JSON.parse(await c.line('RESULT ')) as Result
  const exit = await c.wait()
  t.is(exit.code, 0, exit.stderr)
  t.is(result.pid, wrapper.child)
  t.deepEqual(result.counts, [0, 0, 0], 'the sockets are not ours')
  t.is(result.warnings.length, 1, 'one warning for three calls')
  t.like(result.warnings[0], { name: 'ReactorSocketWarning', code: CODE })
  t.is(
    result.warnings[0].message,
    `LISTEN_PID=${wrapper.pid} is not this process (${result.pid}): the sockets were passed to another process — a wrapper such as npm, tsx or nodemon? exec node directly`,
  )
  t.is(occurrences(exit.stderr, `[${CODE}]`), 1, `printed once on stderr: ${exit.stderr}`)
}))

withActivate('exec\'d directly (LISTEN_PID is ours): the socket, and no warning', (t) => slot(async () => {
  const { c } = await activated([fixture('listen-pid-warning.mjs')])
  const result = JSON.parse(await c.line('RESULT ')) as Result
  const exit = await c.wait()
  t.is(exit.code, 0, exit.stderr)
  t.deepEqual(result.counts, [1, 1, 1])
  t.deepEqual(result.warnings, [])
  t.is(occurrences(exit.stderr, CODE), 0)
}))

test('LISTEN_PID unset: [] and no warning', (t) => slot(async () => {
  const c = run(process.execPath, [fixture('listen-pid-warning.mjs')])
  const result = JSON.parse(await c.line('RESULT ')) as Result
  const exit = await c.wait()
  t.is(exit.code, 0, exit.stderr)
  t.deepEqual(result.counts, [0, 0, 0])
  t.deepEqual(result.warnings, [])
  t.is(occurrences(exit.stderr, CODE), 0)
}))
