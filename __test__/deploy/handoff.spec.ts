// handoff: offer / take / ready between this process and real child processes (one of them of
// another uid), over real UNIX sockets. The end-to-end case under load is in
// handoff-load.spec.ts.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { handoff, sockets, Reactor, AddressFamily, ServerFactory, Offer } from 'reactor-socket'
import {
  MODES,
  fixture,
  Child,
  EchoRec,
  listenTcp4,
  listenUnixFd,
  portOf,
  closeFd,
  closeTracked,
  track,
  hasCommand,
  fdList,
  isCloexec,
  tmpSockPath,
  nodeClient,
  within,
  limiter,
} from '../helpers.js'

const slot = limiter(3)
const kids: Child[] = []
const offers: Offer[] = []
const reactors: Reactor[] = []
test.after.always(async () => {
  for (const k of kids) k.kill()
  for (const o of offers) o.close()
  for (const r of reactors) await r.close()
  closeTracked()
})

function offerAt(path: string, listeners: { name: string; fd: number }[], options?: { allowUids?: number[] }): Offer {
  const offer = handoff.offer(path, listeners, options)
  offers.push(offer)
  return offer
}

const modeOf = (p: string) => fs.statSync(p).mode & 0o777
const inode = (fd: number) => fs.fstatSync(fd).ino

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test(`${tag} take gets the very listening socket, close-on-exec; a reactor serves it; ready() resolves taken and removes the path`, async (t) => {
    const path = tmpSockPath('offer')
    const tcp = listenTcp4()
    const offer = offerAt(path, [{ name: 'web', fd: tcp }])
    t.is(modeOf(path), 0o600, 'the offer socket is created 0600')
    const taken = await within(handoff.take(path), 'take')
    t.is(taken.listeners.length, 1)
    const [l] = taken.listeners
    track(l.fd)
    t.like(l, { name: 'web', family: AddressFamily.INET, type: 1, listening: true })
    t.is(inode(l.fd), inode(tcp))
    t.true(isCloexec(l.fd))
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const port = r.adoptStreamPort(l.fd, AddressFamily.INET, ServerFactory.forProtocol(EchoRec))
    closeFd(l.fd)
    await within(taken.ready(), 'ready')
    t.is(taken.ready(), taken.ready(), 'every call returns the same promise')
    await within(offer.taken, 'offer.taken')
    t.false(fs.existsSync(path), 'the path is gone once ready() resolved')
    const peer = await nodeClient(portOf(tcp))
    peer.sock.write('served by the taker')
    await peer.waitText('served by the taker')
    peer.destroy()
    await port.stopListening()
    t.true(sockets.info(tcp).listening, "the offering side's fd is untouched")
  })
}

test('take: no offer → ENOENT; a dead offer → ECONNREFUSED; a silent listener → ETIMEDOUT; each error says the path', async (t) => {
  const path = tmpSockPath('none')
  const none: any = await t.throwsAsync(handoff.take(path), { code: 'ENOENT' })
  t.is(none.message, `ENOENT: no such file or directory, take '${path}'`)
  t.like(none, { path, syscall: 'take', errno: -2 })
  const dead = listenUnixFd('dead')
  closeFd(dead.fd)
  const refused: any = await t.throwsAsync(handoff.take(dead.path), { code: 'ECONNREFUSED' })
  t.is(refused.message, `ECONNREFUSED: connection refused, take '${dead.path}'`)
  t.is(refused.path, dead.path)
  fs.unlinkSync(dead.path)
  const silent = listenUnixFd('silent')
  const started = Date.now()
  const err = await t.throwsAsync(handoff.take(silent.path, { timeout: 200 }), { code: 'ETIMEDOUT' })
  t.is((err as any).errno, -110)
  t.like(err, { path: silent.path, syscall: 'take' })
  t.true(err!.message.endsWith(`take '${silent.path}'`), err!.message)
  t.true(Date.now() - started < 5000)
  closeFd(silent.fd)
  fs.unlinkSync(silent.path)
})

test('offer.close(): taken rejects with ECANCELED, the path is removed, later takes find nothing; close is idempotent', async (t) => {
  const path = tmpSockPath('close')
  const tcp = listenTcp4()
  const offer = offerAt(path, [{ name: 'web', fd: tcp }])
  offer.close()
  t.false(fs.existsSync(path))
  offer.close()
  const canceled = await t.throwsAsync(within(offer.taken, 'taken rejects'), { code: 'ECANCELED' })
  t.like(canceled, { path, syscall: 'offer' })
  await t.throwsAsync(handoff.take(path), { code: 'ENOENT' })
  t.true(sockets.info(tcp).listening)
})

test('a taker that never says ready leaves the offer open for the next one', async (t) => {
  const path = tmpSockPath('noready')
  const tcp = listenTcp4()
  const offer = offerAt(path, [{ name: 'web', fd: tcp }])
  const child = new Child(spawn(process.execPath, ['-e', `
    const { handoff } = require(${JSON.stringify(process.cwd())})
    handoff.take(${JSON.stringify(path)}).then((t) => { console.log('TOOK ' + t.listeners.length); process.exit(0) })
  `], { stdio: ['ignore', 'pipe', 'pipe'] }))
  kids.push(child)
  t.is(await child.line('TOOK '), '1')
  t.is((await child.wait()).code, 0)
  t.true(fs.existsSync(path), 'still offered')
  const taken = await handoff.take(path)
  for (const l of taken.listeners) track(l.fd)
  await taken.ready()
  await within(offer.taken, 'taken by the second')
})

test.serial('offer: argument and state errors are typed, synchronous, and leave no fd or file', async (t) => {
  const path = tmpSockPath('bad')
  const tcp = listenTcp4()
  const before = fdList()
  t.throws(() => handoff.offer(1 as any, [{ name: 'a', fd: tcp }]), { instanceOf: TypeError })
  t.throws(() => handoff.offer('', [{ name: 'a', fd: tcp }]), { instanceOf: TypeError })
  t.throws(() => handoff.offer(path, {} as any), { instanceOf: TypeError })
  t.throws(() => handoff.offer(path, [{ name: 1, fd: tcp } as any]), { instanceOf: TypeError })
  t.throws(() => handoff.offer(path, [{ name: 'a', fd: -1 }]), { instanceOf: TypeError })
  t.throws(() => handoff.offer(path, [{ name: 'a', fd: tcp }], { allowUids: ['root'] as any }), { instanceOf: TypeError })
  t.throws(() => handoff.offer(path, [{ name: 'a', fd: tcp }], { allowUids: [-1] }), { instanceOf: RangeError })
  t.like(t.throws(() => handoff.offer(path, [])), { code: 'EINVAL' })
  const closed = listenTcp4()
  closeFd(closed)
  const beforeClosed = fdList()
  const badFd = t.throws(() => handoff.offer(path, [{ name: 'web', fd: tcp }, { name: 'a', fd: closed }]))
  t.like(badFd, { code: 'EBADF', errno: -9, path, syscall: 'offer' })
  t.is(badFd!.message, `EBADF: bad file descriptor (listener "a", fd ${closed}), offer '${path}'`, 'the message names the listener and its fd')
  t.deepEqual(fdList(), beforeClosed)
  const noDir = t.throws(() => handoff.offer('/nonexistent-dir/x.sock', [{ name: 'a', fd: tcp }]))
  t.like(noDir, { code: 'ENOENT', path: '/nonexistent-dir/x.sock', syscall: 'offer' })
  t.is(noDir!.message, "ENOENT: no such file or directory, offer '/nonexistent-dir/x.sock'")
  t.false(fs.existsSync(path))
  const live = offerAt(path, [{ name: 'a', fd: tcp }])
  const inUse = t.throws(() => handoff.offer(path, [{ name: 'a', fd: tcp }]))
  t.like(inUse, { code: 'EADDRINUSE', path })
  t.is(inUse!.message, `EADDRINUSE: address already in use, offer '${path}'`)
  live.close()
  await t.throwsAsync(within(live.taken, 'the closed offer ends'), { code: 'ECANCELED' })
  t.throws(() => handoff.take(path, { timeout: -1 }), { instanceOf: RangeError })
  t.throws(() => handoff.take(path, { timeout: 'soon' as any }), { instanceOf: TypeError })
  t.throws(() => handoff.take(null as any), { instanceOf: TypeError })
  t.deepEqual(fdList().filter((l) => !before.includes(l)), [], 'no descriptor left behind')
})

test('a stale socket file left by a dead offering process is replaced', async (t) => {
  const path = tmpSockPath('stale')
  const dead = track(sockets.listenUnix(path))
  closeFd(dead) // the file stays, nobody accepts
  const tcp = listenTcp4()
  const offer = offerAt(path, [{ name: 'web', fd: tcp }])
  t.is(modeOf(path), 0o600)
  const taken = await handoff.take(path)
  for (const l of taken.listeners) track(l.fd)
  await taken.ready()
  await offer.taken
})

// A peer of another uid: needs root (to run a child as nobody) and setpriv. The checkout may sit
// in a folder other uids cannot enter (a 0700 temporary folder), so the child runs from a copy of
// the built package in a folder it can read; a probe run as nobody says whether that works.
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']
const nobodyDir = process.getuid?.() === 0 && hasCommand('setpriv') ? packageCopyForNobody() : null
const nobodyProbe = nobodyDir === null ? null : spawnSync('setpriv', [...NOBODY, process.execPath, '-e', `require(${JSON.stringify(nobodyDir)})`], { encoding: 'utf8' })
const canSwitchUid = nobodyProbe?.status === 0
const asOtherUid = canSwitchUid ? test : test.skip
if (!canSwitchUid) {
  const why = nobodyDir === null ? 'not root or no setpriv' : `uid 65534 cannot load the package from ${nobodyDir}: ${nobodyProbe?.stderr.split('\n')[0]}`
  console.log(`handoff.spec: ${why}; the other-uid tests are skipped`)
}

/** package.json, dist/, native/ and the taker fixture, copied into a fresh world-readable folder. */
function packageCopyForNobody(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-socket-nobody-'))
  test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const entry of ['package.json', 'dist', 'native']) fs.cpSync(path.join(process.cwd(), entry), path.join(dir, entry), { recursive: true })
  fs.copyFileSync(fixture('handoff-take.mjs'), path.join(dir, 'handoff-take.mjs'))
  fs.chmodSync(dir, 0o755)
  return dir
}

function takeAsNobody(path: string): Child {
  const c = new Child(
    spawn('setpriv', [...NOBODY, process.execPath, `${nobodyDir}/handoff-take.mjs`, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: nobodyDir ?? undefined,
    }),
  )
  kids.push(c)
  return c
}

async function outcomeOf(c: Child): Promise<{ kind: string; body: any }> {
  await within(c.exited, 'taker exit', 15000)
  const line = c.stdout.split('\n').find((l) => l.startsWith('TOOK ') || l.startsWith('ERROR '))
  if (!line) throw new Error(`taker printed nothing: ${c.stdout}\n${c.stderr}`)
  const [kind, ...rest] = line.split(' ')
  return { kind, body: JSON.parse(rest.join(' ')) }
}

asOtherUid('a peer of another uid is refused (mode 0600 first, SO_PEERCRED when the file is opened up), gets nothing, and the offer stays open', (t) => slot(async () => {
  const path = tmpSockPath('uid')
  const tcp = listenTcp4()
  const offer = offerAt(path, [{ name: 'web', fd: tcp }])
  // 0600 and owned by us: the kernel refuses the other uid's connect.
  let r = await outcomeOf(takeAsNobody(path))
  t.is(r.kind, 'ERROR')
  t.is(r.body.uid, 65534)
  t.is(r.body.code, 'EACCES')
  // Open the file to everyone: now only SO_PEERCRED stands between them and the sockets.
  fs.chmodSync(path, 0o666)
  r = await outcomeOf(takeAsNobody(path))
  t.is(r.kind, 'ERROR')
  t.is(r.body.code, 'EACCES')
  t.regex(r.body.message, /refused/)
  t.true(fs.existsSync(path), 'the offer stays open')
  const taken = await handoff.take(path)
  for (const l of taken.listeners) track(l.fd)
  await taken.ready()
  await within(offer.taken, 'taken by our own uid')
}))

asOtherUid('allowUids lets a peer of that uid take the listeners', (t) => slot(async () => {
  const path = tmpSockPath('allow')
  const tcp = listenTcp4()
  const offer = offerAt(path, [{ name: 'web', fd: tcp }], { allowUids: [65534] })
  fs.chmodSync(path, 0o666)
  const r = await outcomeOf(takeAsNobody(path))
  t.is(r.kind, 'TOOK', JSON.stringify(r.body))
  t.is(r.body.listeners[0].inode, inode(tcp))
  t.is(r.body.listeners[0].name, 'web')
  await within(offer.taken, 'taken by uid 65534')
}))

// ---------------------------------------------------------------------------------------------
// Teardown: waiting threads are cancelled and joined when their JS environment goes away

test.serial('a worker thread terminated while its offer and a take wait: both threads end, the path is removed, nothing leaks', async (t) => {
  const { Worker } = await import('node:worker_threads')
  const path = tmpSockPath('worker')
  const silent = listenUnixFd('worker-silent')
  const before = fdList()
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads')
    const { handoff, sockets } = require(workerData.pkg)
    const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
    handoff.offer(workerData.path, [{ name: 'web', fd }])
    handoff.take(workerData.silent, { timeout: Infinity }).catch(() => {})
    parentPort.postMessage('waiting')
    `,
    { eval: true, workerData: { pkg: process.cwd(), path, silent: silent.path } },
  )
  await within(new Promise((r) => worker.once('message', r)), 'the worker to offer')
  t.true(fs.existsSync(path))
  await within(worker.terminate(), 'the worker to terminate')
  t.false(fs.existsSync(path), 'the offer path is removed at teardown')
  await t.throwsAsync(handoff.take(path), { code: 'ENOENT' })
  // The worker's own listener fd is its business (it never closed it); ours are back as before
  // apart from that one socket.
  const extra = fdList().filter((l) => !before.includes(l))
  t.true(extra.length <= 1, `left: ${extra.join(', ')}`)
  closeFd(silent.fd)
  fs.unlinkSync(silent.path)
})

test('process.exit() with an offer and a take waiting: exit code 0, the path is removed', async (t) => {
  const path = tmpSockPath('exit')
  const silent = listenUnixFd('exit-silent')
  const child = new Child(spawn(process.execPath, ['-e', `
    const { handoff, sockets } = require(${JSON.stringify(process.cwd())})
    const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
    handoff.offer(${JSON.stringify(path)}, [{ name: 'web', fd }])
    handoff.take(${JSON.stringify(silent.path)}, { timeout: Infinity }).catch(() => {})
    setTimeout(() => process.exit(0), 100)
  `], { stdio: ['ignore', 'pipe', 'pipe'] }))
  kids.push(child)
  const exit = await child.wait()
  t.is(exit.code, 0, exit.stderr)
  t.is(exit.signal, null)
  t.false(fs.existsSync(path))
  closeFd(silent.fd)
  fs.unlinkSync(silent.path)
})
