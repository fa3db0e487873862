// docs/adopting.md "Lifetime" and "`Reactor` options": what keeps the process alive, unref(), exiting when nothing
// is left, process.exit() from callbacks and while busy, reactor.close(), when the I/O thread starts.
// Each scenario runs in a child process (fixtures/lifetime.mjs), in both reactor modes.
import test from 'ava'
import * as net from 'node:net'
import * as crypto from 'node:crypto'
import * as dgram from 'node:dgram'
import {
  MODES,
  fixture,
  child,
  killChildren,
  nodeClient,
  within,
  limiter,
  quietPeriod,
} from '../helpers.js'

const slot = limiter(3)

test.after.always(() => killChildren())

const run = (scenario: string, mode: string) => child(fixture('lifetime.mjs'), [scenario, mode])

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  for (const scenario of [
    'idle-port',
    'idle-conn',
    'idle-dgram',
    'ref-again',
    'unref-twice-ref-once',
    'unref-conn-lost-keeps-port',
    'unref-port-stopped-keeps-other',
  ]) {
    test(`${tag} ${scenario}: an adopted, ref'd socket keeps the process alive`, (t) => slot(async () => {
      const c = run(scenario, mode.name)
      await c.line('READY')
      await quietPeriod(800, 'the process exiting') // no event announces that something does not happen
      t.true(c.alive, `the process stayed alive (stderr: ${c.stderr})`)
      c.kill()
      const res = await c.wait()
      t.is(res.signal, 'SIGKILL')
    }))
  }

  for (const scenario of [
    'unref-port',
    'unref-conn',
    'unref-dgram',
    'nothing',
    'stopped',
    'default-reactor',
    'ref-twice-unref-once',
  ]) {
    test(`${tag} ${scenario}: the process exits by itself with code 0`, (t) => slot(async () => {
      const c = run(scenario, mode.name)
      const res = await c.wait(10000)
      t.is(res.signal, null)
      t.is(res.code, 0, res.stderr)
      t.regex(res.stdout, /READY/)
    }))
  }

  test(`${tag} process.exit() inside connectionMade exits with that code, no crash`, (t) => slot(async () => {
    const c = run('exit-in-callback', mode.name)
    const port = Number(await c.line('PORT '))
    const peer = await nodeClient(port)
    const res = await c.wait()
    peer.destroy()
    t.is(res.signal, null)
    t.is(res.code, 7, res.stderr)
  }))

  test(`${tag} process.exit() inside datagramReceived exits with that code, no crash`, (t) => slot(async () => {
    const c = run('exit-in-dgram', mode.name)
    const port = Number(await c.line('PORT '))
    const s = dgram.createSocket('udp4')
    const timer = setInterval(() => s.send('x', port, '127.0.0.1', () => {}), 20)
    try {
      const res = await c.wait()
      t.is(res.signal, null)
      t.is(res.code, 5, res.stderr)
    } finally {
      clearInterval(timer)
      s.close()
    }
  }))

  test(`${tag} process.exit() while data flows through the reactor: exit code 0, no abort`, (t) => slot(async () => {
    const c = run('exit-busy', mode.name)
    const port = Number(await c.line('PORT '))
    const sock = net.connect(port, '127.0.0.1')
    sock.on('error', () => {})
    sock.on('data', () => {})
    const chunk = crypto.randomBytes(64 * 1024)
    const pump = () => {
      while (!sock.destroyed && sock.write(chunk)) {}
    }
    sock.on('drain', pump)
    sock.on('connect', pump)
    const res = await c.wait()
    sock.destroy()
    t.is(res.signal, null)
    t.is(res.code, 0, res.stderr)
  }))

  test(`${tag} process.exit() at top level with a live port, connection and datagram port: code 0`, (t) => slot(async () => {
    const c = run('exit-top-level', mode.name)
    const res = await c.wait()
    t.is(res.signal, null)
    t.is(res.code, 0, res.stderr)
  }))

  test(`${tag} reactor.close() aborts connections, stops ports, is idempotent, then adopt → ERR_REACTOR_CLOSED; the process exits`, (t) => slot(async () => {
    const c = run('close-reactor', mode.name)
    const res = await c.wait()
    t.is(res.code, 0, res.stderr)
    const out = JSON.parse(await c.line('RESULT '))
    t.deepEqual(out, { stopFactory: 1, lost: ['aborted'], stopProtocol: 1, afterClose: 'ERR_REACTOR_CLOSED' })
  }))

  test(`${tag} threads: none on construction or failed adoption; ${mode.thread ? 'one I/O thread from the first adoption, joined by close()' : 'never any'}`, (t) => slot(async () => {
    const c = run('threads', mode.name)
    const res = await c.wait()
    t.is(res.code, 0, res.stderr)
    const n = JSON.parse(await c.line('RESULT '))
    t.is(n.constructed, n.before, 'constructing a Reactor starts no thread')
    t.is(n.failed, n.before, 'a failed adoption starts no thread')
    if (mode.thread) {
      t.is(n.adopted, n.before + 1, 'the first adoption starts the I/O thread')
      t.is(n.adopted2, n.adopted, 'later adoptions reuse it')
      t.is(n.closed, n.before, 'close() joins the thread')
    } else {
      t.is(n.adopted, n.before, 'thread: false starts no thread')
      t.is(n.adopted2, n.before)
      t.is(n.closed, n.before)
    }
  }))
}

test('a helper child that never settles is bounded', async (t) => {
  // guard for the helper itself: within() rejects
  await t.throwsAsync(within(new Promise(() => {}), 'never', 50), { message: /timed out/ })
})
