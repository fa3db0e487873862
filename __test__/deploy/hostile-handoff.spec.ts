// Hostile input, round two: the handoff. A timeout too large for a Duration (1e300) or for the
// clock (1e22) must not abort Node; take() must check who offers (SO_PEERCRED: our uid, root, or
// trustUids), tested against a real offer made by uid 65534; a silent client or a taker that hangs
// must not hold up the next taker; the example server's default path is in a private directory.
// Real child processes throughout.
import test, { type Implementation } from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { handoff, Reactor, AddressFamily, ServerFactory, type Offer } from 'reactor-socket'
import {
  MODES,
  fixture,
  Child,
  EchoRec,
  listenTcp4,
  closeFd,
  closeTracked,
  track,
  hasCommand,
  fdList,
  settleFds,
  tmpSockPath,
  nodeClient,
  within,
  limiter,
} from '../helpers.js'

const slot = limiter(3)
const kids: Child[] = []
const offers: Offer[] = []
test.after.always(() => {
  for (const k of kids) k.kill()
  for (const o of offers) o.close()
  closeTracked()
})

function offerAt(p: string, fd: number, options?: Parameters<typeof handoff.offer>[2]): Offer {
  const offer = handoff.offer(p, [{ name: 'web', fd }], options)
  offers.push(offer)
  return offer
}

function node(script: string, env: NodeJS.ProcessEnv = process.env): Child {
  const c = new Child(spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env }))
  kids.push(c)
  return c
}

const PKG = JSON.stringify(process.cwd())

// ---------------------------------------------------------------------------------------------
// 1. Timeouts the clock cannot hold

for (const timeout of ['1e300', '1e22', 'Number.MAX_VALUE']) {
  test(`take() and ready() with timeout ${timeout}: no abort; the handoff completes (or the JS layer refuses the number)`, (t) => slot(async () => {
    const p = tmpSockPath('huge-timeout')
    // The binding is called directly too: whatever the JS layer does with such a number, the
    // native side must never panic (a panic cannot cross the FFI boundary: Node aborts).
    const c = node(`
      const { handoff, sockets } = require(${PKG})
      const native = require(${JSON.stringify(path.join(process.cwd(), 'native', 'binding.js'))})
      const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
      const offer = handoff.offer(${JSON.stringify(p)}, [{ name: 'web', fd }])
      native.handoff.take(${JSON.stringify(p)}, ${timeout}, [], (outcome) => {
        if (outcome.code) return console.log('NATIVE ' + outcome.code)
        for (const l of outcome.listeners) sockets.close(l.fd)
        native.handoff.ready(outcome.control, ${timeout}, (done) => {
          console.log('NATIVE ' + (done.code ?? 'OK'))
          const again = handoff.offer(${JSON.stringify(p)}, [{ name: 'web', fd }])
          let taking
          try {
            taking = handoff.take(${JSON.stringify(p)}, { timeout: ${timeout} })
          } catch (err) {
            taking = Promise.reject(err)
          }
          taking
            .then(async (taken) => {
              await taken.ready()
              await again.taken
              for (const l of taken.listeners) sockets.close(l.fd)
              console.log('DONE ' + taken.listeners.length)
            })
            .catch((err) => { again.close(); console.log('REFUSED ' + err.name + ' ' + err.code) })
            .finally(() => sockets.close(fd))
        })
      })
      offer.taken.catch(() => {})
    `)
    const exit = await c.wait(20000)
    t.is(exit.signal, null, `no abort (stderr: ${exit.stderr.slice(0, 300)})`)
    t.is(exit.code, 0, exit.stderr.slice(0, 300))
    t.true(exit.stdout.includes('NATIVE OK'), exit.stdout)
    t.regex(exit.stdout, /DONE 1|REFUSED RangeError/)
  }))
}

// ---------------------------------------------------------------------------------------------
// 8. A silent client, or a taker that hangs, holds up no other taker

test('a same-uid client that connects and stays silent does not hold up a take()', async (t) => {
  const p = tmpSockPath('silent-client')
  const tcp = listenTcp4()
  const offer = offerAt(p, tcp)
  const silent = net.connect(p)
  silent.on('error', () => {})
  t.teardown(() => silent.destroy())
  await new Promise((resolve) => silent.once('connect', resolve))
  const started = Date.now()
  const taken = await within(handoff.take(p, { timeout: 5000 }), 'take behind a silent client', 8000)
  for (const l of taken.listeners) track(l.fd)
  await within(taken.ready(), 'ready')
  await within(offer.taken, 'offer.taken')
  t.true(Date.now() - started < 3000, `took ${Date.now() - started} ms`)
})

test('a successor that took the descriptors and hangs does not hold up the next taker', (t) => slot(async () => {
  const p = tmpSockPath('hanging-taker')
  const tcp = listenTcp4()
  const offer = offerAt(p, tcp)
  // A real process that takes, then never calls ready() and never exits on its own.
  const hanging = node(`
    const { handoff } = require(${PKG})
    handoff.take(${JSON.stringify(p)}).then((t) => { console.log('TOOK ' + t.listeners.length); setInterval(() => {}, 1000) })
  `)
  t.is(await hanging.line('TOOK '), '1')
  const started = Date.now()
  const taken = await within(handoff.take(p, { timeout: 5000 }), 'take behind a hanging taker', 8000)
  for (const l of taken.listeners) track(l.fd)
  await within(taken.ready(), 'ready')
  await within(offer.taken, 'offer.taken')
  t.true(Date.now() - started < 3000, `took ${Date.now() - started} ms`)
  hanging.kill()
}))

test('takerTimeout: the offer drops a taker that does not say ready in time, and stays open', async (t) => {
  const p = tmpSockPath('taker-timeout')
  const tcp = listenTcp4()
  const offer = offerAt(p, tcp, { takerTimeout: 300 })
  const started = Date.now()
  const first = await handoff.take(p)
  for (const l of first.listeners) track(l.fd)
  // Too late: the offer dropped us.
  await new Promise((resolve) => setTimeout(resolve, 600))
  await t.throwsAsync(first.ready(), { code: 'ECONNRESET' })
  t.true(Date.now() - started >= 300)
  t.true(fs.existsSync(p), 'the offer stays open')
  const second = await handoff.take(p)
  for (const l of second.listeners) track(l.fd)
  await within(second.ready(), 'ready in time')
  await within(offer.taken, 'offer.taken')
  t.throws(() => handoff.offer(p, [{ name: 'web', fd: tcp }], { takerTimeout: 0 }), { instanceOf: RangeError })
  t.throws(() => handoff.offer(p, [{ name: 'web', fd: tcp }], { takerTimeout: 'soon' as any }), { instanceOf: TypeError })
})

// ---------------------------------------------------------------------------------------------
// 5. take() checks who offers: a real offer made by uid 65534

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']
const nobodyDir = process.getuid?.() === 0 && hasCommand('setpriv') ? packageCopyForNobody() : null
const nobodyProbe = nobodyDir === null ? null : spawnSync('setpriv', [...NOBODY, process.execPath, '-e', `require(${JSON.stringify(nobodyDir)})`], { encoding: 'utf8' })
const canSwitchUid = nobodyProbe?.status === 0
const whyNot = nobodyDir === null ? 'not root or no setpriv' : `uid 65534 cannot load the package from ${nobodyDir}: ${nobodyProbe?.stderr.split('\n')[0]}`
const asOtherUid = (title: string, impl: Implementation<[]>) =>
  // Serial: they compare the fd table, which tests running beside them would change.
  canSwitchUid ? test.serial(title, impl) : test.skip(`${title} (skipped: ${whyNot})`, impl)

/** package.json, dist/, native/ and the offer fixture, copied into a fresh world-readable folder;
 *  and a folder only uid 65534 may write to, for its offer's socket. */
function packageCopyForNobody(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-socket-hostile-'))
  test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const entry of ['package.json', 'dist', 'native']) fs.cpSync(path.join(process.cwd(), entry), path.join(dir, entry), { recursive: true })
  fs.copyFileSync(fixture('handoff-offer.mjs'), path.join(dir, 'handoff-offer.mjs'))
  fs.chmodSync(dir, 0o755)
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 })
  fs.chownSync(path.join(dir, 'run'), 65534, 65534)
  return dir
}

let nobodyPaths = 0
function offerAsNobody(options: object = {}): { child: Child; path: string } {
  const p = path.join(nobodyDir!, 'run', `offer-${++nobodyPaths}.sock`)
  const args = [...NOBODY, process.execPath, `${nobodyDir}/handoff-offer.mjs`, p, JSON.stringify(options)]
  const child = new Child(spawn('setpriv', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: nobodyDir! }))
  kids.push(child)
  return { child, path: p }
}

asOtherUid("take() refuses an offer made by another uid with EPERM, receives nothing, and the offer stays open", (t) => slot(async () => {
  const { child, path: p } = offerAsNobody()
  t.is(JSON.parse(await child.line('OFFERED ')).uid, 65534)
  const before = fdList()
  const err: any = await t.throwsAsync(handoff.take(p, { timeout: 5000 }), { code: 'EPERM' })
  t.regex(err.message, /uid 65534/)
  t.deepEqual(await settleFds(before), [], 'nothing received, nothing left open')
  t.true(fs.existsSync(p), "the stranger's offer is untouched")
  child.kill()
  await child.wait()
}))

asOtherUid('trustUids: [65534] accepts that offer; the listener arrives and serves in both reactor modes', (t) => slot(async () => {
  for (const mode of MODES) {
    // Trust both ways: the offer lets our uid take, and we trust its uid.
    const { child, path: p } = offerAsNobody({ allowUids: [process.getuid!()] })
    const offered = JSON.parse(await child.line('OFFERED '))
    const taken = await within(handoff.take(p, { timeout: 5000, trustUids: [65534] }), 'take from a trusted uid')
    const [l] = taken.listeners
    track(l.fd)
    t.is(fs.fstatSync(l.fd).ino, offered.inode, `[${mode.name}] the very socket`)
    const r = new Reactor({ thread: mode.thread })
    const port = r.adoptStreamPort(l.fd, AddressFamily.INET, ServerFactory.forProtocol(EchoRec))
    await within(taken.ready(), 'ready')
    await child.line('TAKEN ')
    const peer = await nodeClient((port.getHost() as { port: number }).port)
    peer.sock.write('trusted')
    await peer.waitText('trusted')
    peer.destroy()
    await port.stopListening()
    await r.close()
    closeFd(l.fd)
    await child.wait()
  }
}))

test('take: trustUids must be an array of uids', (t) => {
  const p = tmpSockPath('trust-args')
  t.throws(() => handoff.take(p, { trustUids: 65534 as any }), { instanceOf: TypeError })
  t.throws(() => handoff.take(p, { trustUids: ['nobody'] as any }), { instanceOf: TypeError })
  t.throws(() => handoff.take(p, { trustUids: [-1] }), { instanceOf: RangeError })
})

// ---------------------------------------------------------------------------------------------
// The example server's default handoff path: private, never the shared temporary folder

const EXAMPLE = path.join(process.cwd(), 'examples', 'handoff', 'server.js')

function runExample(env: NodeJS.ProcessEnv): Child {
  const c = new Child(spawn(process.execPath, [EXAMPLE, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env }))
  kids.push(c)
  return c
}

async function stopExample(c: Child) {
  c.proc.kill('SIGTERM')
  return c.wait(10000)
}

test('examples/handoff: the default path is in $XDG_RUNTIME_DIR, else in a 0700 directory of our own; a directory others can write to is refused', (t) => slot(async () => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-xdg-'))
  t.teardown(() => fs.rmSync(runtime, { recursive: true, force: true }))
  fs.chmodSync(runtime, 0o700)
  let c = runExample({ ...process.env, XDG_RUNTIME_DIR: runtime })
  let ready = JSON.parse(await c.line('READY '))
  t.is(ready.path, path.join(runtime, 'echo-handoff.sock'))
  await stopExample(c)

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-tmpdir-'))
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp }
  delete env.XDG_RUNTIME_DIR
  c = runExample(env)
  ready = JSON.parse(await c.line('READY '))
  t.not(path.dirname(ready.path), tmp, 'never the shared temporary folder itself')
  t.is(path.dirname(path.dirname(ready.path)), tmp)
  const dir = fs.lstatSync(path.dirname(ready.path))
  t.is(dir.mode & 0o777, 0o700)
  t.is(dir.uid, process.getuid!())
  await stopExample(c)

  // Someone made that directory first, open to all: the example refuses it.
  const open = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-open-'))
  t.teardown(() => fs.rmSync(open, { recursive: true, force: true }))
  fs.chmodSync(open, 0o777)
  c = runExample({ ...process.env, XDG_RUNTIME_DIR: open })
  const exit = await c.wait(10000)
  t.not(exit.code, 0)
  t.regex(exit.stderr, /no one else can write/)
}))
