// systemd: socket activation (listenFds), notification (notify, with descriptors) and the
// watchdog interval, against real processes: a parent that sets the variables exactly as systemd
// does (LISTEN_PID is the child's own pid: `sh -c 'LISTEN_PID=$$ exec node ...'`), a real AF_UNIX
// datagram socket as NOTIFY_SOCKET (python3 receives it, path and abstract), and the real
// `systemd-socket-activate` running the example server (examples/systemd/server.js) unchanged.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { systemd, AddressFamily, SocketType } from 'reactor-socket'
import {
  MODES,
  fixture,
  Child,
  listenTcp4,
  bindUdp4,
  listenUnixFd,
  portOf,
  closeFd,
  closeTracked,
  hasCommand,
  fdList,
  addedFds,
  tmpSockPath,
  nodeClient,
  udpPeer,
  sendUntil,
  waitUntil,
  limiter,
} from '../helpers.js'

const slot = limiter(3)
const kids: Child[] = []
test.after.always(() => {
  for (const k of kids) k.kill()
  closeTracked()
})

const EXAMPLE = path.join(process.cwd(), 'examples', 'systemd', 'server.js')
const HAS_PYTHON = hasCommand('python3')
const HAS_ACTIVATE = hasCommand('systemd-socket-activate')
const withPython = HAS_PYTHON ? test : test.skip
const withPythonSerial = HAS_PYTHON ? test.serial : test.skip
const withActivate = HAS_ACTIVATE && HAS_PYTHON ? test : test.skip
if (!HAS_PYTHON) console.log('systemd.spec: python3 is missing; the NOTIFY_SOCKET receiver tests are skipped')
if (!HAS_ACTIVATE) console.log('systemd.spec: systemd-socket-activate is missing; its tests are skipped')

/** This process's environment without systemd's variables (a child gets only what a test sets). */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) {
    delete env[name]
  }
  return env
}

interface ListenResult {
  fds?: { fd: number; name: string; family: number; type: number; listening: boolean; cloexec: boolean; inode: number }[]
  error?: { code: string; errno: number; message: string }
  pid: number
  env: Record<string, string | null>
}

/** Runs the listenFds fixture with `fds` as its fds 3.., LISTEN_PID set to `pid` ('$$': its own). */
async function listenFdsIn(vars: Record<string, string>, fds: number[], options?: object, pid = '$$'): Promise<ListenResult> {
  const args = ['-c', `LISTEN_PID=${pid} exec "$0" "$@"`, process.execPath, fixture('systemd-listen.mjs')]
  if (options !== undefined) args.push(JSON.stringify(options))
  const c = new Child(spawn('sh', args, { stdio: ['ignore', 'pipe', 'pipe', ...fds], env: { ...baseEnv(), ...vars } }))
  kids.push(c)
  const result = JSON.parse(await c.line('RESULT ')) as ListenResult
  const exit = await c.wait()
  if (exit.code !== 0) throw new Error(`fixture failed: ${exit.stderr}`)
  return result
}

test('listenFds: the descriptors from fd 3, named by LISTEN_FDNAMES (unknown for the rest), described, close-on-exec, variables removed', (t) => slot(async () => {
  const tcp = listenTcp4()
  const udp = bindUdp4()
  const unix = listenUnixFd('sd').fd
  const r = await listenFdsIn({ LISTEN_FDS: '3', LISTEN_FDNAMES: 'web:dns' }, [tcp, udp, unix])
  t.is(r.error, undefined)
  t.deepEqual(
    r.fds!.map(({ fd, name, family, type, listening }) => ({ fd, name, family, type, listening })),
    [
      { fd: 3, name: 'web', family: AddressFamily.INET, type: SocketType.STREAM, listening: true },
      { fd: 4, name: 'dns', family: AddressFamily.INET, type: SocketType.DGRAM, listening: false },
      { fd: 5, name: 'unknown', family: AddressFamily.UNIX, type: SocketType.STREAM, listening: true },
    ],
  )
  t.deepEqual(r.fds!.map((f) => f.inode), [tcp, udp, unix].map((fd) => fs.fstatSync(fd).ino), 'the very sockets the parent passed')
  t.true(r.fds!.every((f) => f.cloexec))
  t.deepEqual(r.env, { LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null })
}))

test('listenFds: without LISTEN_FDNAMES every name is unknown; unsetEnvironment: false keeps the variables', (t) => slot(async () => {
  const tcp = listenTcp4()
  const r = await listenFdsIn({ LISTEN_FDS: '1' }, [tcp], { unsetEnvironment: false })
  t.deepEqual(r.fds!.map((f) => [f.fd, f.name]), [[3, 'unknown']])
  t.is(r.env.LISTEN_PID, String(r.pid))
  t.is(r.env.LISTEN_FDS, '1')
}))

test('listenFds: LISTEN_PID of another process means none (the descriptors are not ours); variables still removed', (t) => slot(async () => {
  const tcp = listenTcp4()
  const r = await listenFdsIn({ LISTEN_FDS: '1', LISTEN_FDNAMES: 'web' }, [tcp], undefined, '1')
  t.deepEqual(r.fds, [])
  t.deepEqual(r.env, { LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null })
}))

test('listenFds: a malformed value is an Error with code EINVAL, and the variables are removed', (t) => slot(async () => {
  const tcp = listenTcp4()
  const cases: [Record<string, string>, string][] = [
    [{ LISTEN_FDS: 'abc' }, '$$'],
    [{ LISTEN_FDS: '0' }, '$$'],
    [{ LISTEN_FDS: '-1' }, '$$'],
    [{ LISTEN_FDS: '1 ' }, '$$'],
    [{ LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b' }, '$$'],
    [{ LISTEN_FDS: '1' }, 'pid'],
    [{ LISTEN_FDS: '1' }, '-4'],
  ]
  for (const [vars, pid] of cases) {
    const r = await listenFdsIn(vars, [tcp], undefined, pid)
    t.is(r.error?.code, 'EINVAL', JSON.stringify({ vars, pid }))
    t.is(r.error?.errno, -22)
    t.deepEqual(r.env, { LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null })
  }
}))

test('listenFds: a listed descriptor that is not open is EBADF', (t) => slot(async () => {
  const r = await listenFdsIn({ LISTEN_FDS: '40' }, [])
  t.is(r.error?.code, 'EBADF')
}))

test('listenFds: nothing set → [] ; bad options → TypeError', (t) => {
  if (process.env.LISTEN_PID !== undefined) return t.fail('the test runner itself has LISTEN_PID set')
  t.deepEqual(systemd.listenFds(), [])
  t.throws(() => systemd.listenFds(null as any), { instanceOf: TypeError })
  t.throws(() => systemd.listenFds({ unsetEnvironment: 'no' as any }), { instanceOf: TypeError })
})

// ---------------------------------------------------------------------------------------------
// notify: the test process sets NOTIFY_SOCKET for itself (serial tests: the environment is shared)

/** python3 receiving `count` notifications at `address`; each is printed as a line "GOT {json}". */
function receiver(address: string, count = 1): Child {
  const args = [fixture('notify-receiver.py'), address, String(count)]
  const c = new Child(spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  kids.push(c)
  return c
}

async function withNotifySocket<T>(value: string | undefined, body: () => Promise<T> | T): Promise<T> {
  const saved = process.env.NOTIFY_SOCKET
  if (value === undefined) delete process.env.NOTIFY_SOCKET
  else process.env.NOTIFY_SOCKET = value
  try {
    return await body()
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET
    else process.env.NOTIFY_SOCKET = saved
  }
}

test.serial('notify: false when NOTIFY_SOCKET is unset or empty', async (t) => {
  await withNotifySocket(undefined, () => t.false(systemd.notify('READY=1')))
  await withNotifySocket('', () => t.false(systemd.notify('READY=1')))
})

for (const kind of ['path', 'abstract'] as const) {
  withPythonSerial(`notify: state and descriptors reach an AF_UNIX datagram socket (${kind} NOTIFY_SOCKET)`, async (t) => {
    const address = kind === 'path' ? tmpSockPath('notify') : `@reactor-socket-test-${process.pid}-notify`
    const r = receiver(address)
    await r.line('BOUND')
    const tcp = listenTcp4()
    const udp = bindUdp4()
    const before = fdList()
    const sent = await withNotifySocket(address, () => systemd.notify('FDSTORE=1\nFDNAME=web', [tcp, udp]))
    t.true(sent)
    const got = JSON.parse(await r.line('GOT '))
    t.is(got.state, 'FDSTORE=1\nFDNAME=web')
    t.false(got.truncated)
    t.deepEqual(got.fds.map((f: { inode: number }) => f.inode), [fs.fstatSync(tcp).ino, fs.fstatSync(udp).ino])
    // Not fdList() === before: the receiver exits once it has printed, and Node closes the
    // socketpairs of its stdio at a moment of its own.
    t.deepEqual(addedFds(before), [], 'notify leaves no descriptor behind')
    for (const fd of [tcp, udp]) t.true(before.includes(fdList().find((l) => l.startsWith(`${fd} -> `)) ?? ''), `our fd ${fd} stays open`)
    t.is((await r.wait()).code, 0)
  })
}

withPythonSerial('notify: READY=1 without descriptors', async (t) => {
  const address = `@reactor-socket-test-${process.pid}-ready`
  const r = receiver(address)
  await r.line('BOUND')
  t.true(await withNotifySocket(address, () => systemd.notify('READY=1\nSTATUS=up')))
  const got = JSON.parse(await r.line('GOT '))
  t.deepEqual(got, { state: 'READY=1\nSTATUS=up', fds: [], truncated: false })
  await r.wait()
})

test.serial('notify: errors are typed, say the socket (path and message) or the descriptor, and leak nothing', async (t) => {
  const before = fdList()
  await withNotifySocket('relative/path', () => {
    t.like(t.throws(() => systemd.notify('READY=1')), { code: 'EINVAL', errno: -22, path: 'relative/path', syscall: 'notify' })
  })
  await withNotifySocket('/nonexistent-dir/notify', () => {
    const err = t.throws(() => systemd.notify('READY=1'))
    t.like(err, { code: 'ENOENT', errno: -2, path: '/nonexistent-dir/notify', syscall: 'notify' })
    t.is(err!.message, "ENOENT: no such file or directory, notify '/nonexistent-dir/notify'")
  })
  const abstract = `@reactor-socket-test-${process.pid}-nobody`
  await withNotifySocket(abstract, () => {
    const err = t.throws(() => systemd.notify('READY=1'))
    t.like(err, { code: 'ECONNREFUSED', path: abstract })
    t.true(err!.message.endsWith(`notify '${abstract}'`), err!.message)
  })
  await withNotifySocket(`@reactor-socket-test-${process.pid}-nobody`, () => {
    t.throws(() => systemd.notify(1 as any), { instanceOf: TypeError })
    t.throws(() => systemd.notify('READY=1', 3 as any), { instanceOf: TypeError })
    t.throws(() => systemd.notify('READY=1', [-1]), { instanceOf: TypeError })
    t.throws(() => systemd.notify('READY=1', [1.5]), { instanceOf: TypeError })
    const closed = listenTcp4()
    closeFd(closed)
    const badFd = t.throws(() => systemd.notify('READY=1', [closed]))
    t.like(badFd, { code: 'EBADF' })
    t.true(badFd!.message.startsWith(`EBADF: bad file descriptor (fd ${closed}), notify`), badFd!.message)
  })
  t.deepEqual(fdList(), before)
})

test.serial('watchdogInterval: WATCHDOG_USEC in ms when WATCHDOG_PID is unset or ours; null otherwise; EINVAL when malformed', (t) => {
  const saved = { usec: process.env.WATCHDOG_USEC, pid: process.env.WATCHDOG_PID }
  const set = (usec?: string, pid?: string) => {
    if (usec === undefined) delete process.env.WATCHDOG_USEC
    else process.env.WATCHDOG_USEC = usec
    if (pid === undefined) delete process.env.WATCHDOG_PID
    else process.env.WATCHDOG_PID = pid
  }
  try {
    set()
    t.is(systemd.watchdogInterval(), null)
    set('3000000')
    t.is(systemd.watchdogInterval(), 3000)
    set('1500', String(process.pid))
    t.is(systemd.watchdogInterval(), 1.5)
    set('3000000', '1')
    t.is(systemd.watchdogInterval(), null)
    for (const bad of ['0', 'x', '-5', '']) {
      set(bad)
      t.like(t.throws(() => systemd.watchdogInterval()), { code: 'EINVAL' }, bad)
    }
    set('3000000', 'me')
    t.like(t.throws(() => systemd.watchdogInterval()), { code: 'EINVAL' })
  } finally {
    set(saved.usec, saved.pid)
  }
})

// ---------------------------------------------------------------------------------------------
// The real systemd-socket-activate running examples/systemd/server.js, in both reactor modes

/** A port that was free a moment ago (systemd-socket-activate binds it itself). */
function freePort(): number {
  const fd = listenTcp4()
  const port = portOf(fd)
  closeFd(fd)
  return port
}

function activate(args: string[], mode: { thread: boolean }, notifySocket: string, extraEnv: string[] = []): Child {
  const env = ['-E', `REACTOR_THREAD=${mode.thread ? 1 : 0}`, '-E', `NOTIFY_SOCKET=${notifySocket}`, ...extraEnv.flatMap((v) => ['-E', v])]
  const c = new Child(
    spawn('systemd-socket-activate', [...args, ...env, process.execPath, EXAMPLE], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: baseEnv(),
    }),
  )
  kids.push(c)
  return c
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  withActivate(`${tag} systemd-socket-activate runs the example server unchanged: TCP echo, READY=1 notified, SIGTERM stops it`, (t) => slot(async () => {
    const port = freePort()
    const notifyAddress = `@reactor-socket-test-${process.pid}-activate-${mode.name}`
    const r = receiver(notifyAddress, 2)
    await r.line('BOUND')
    const c = activate(['-l', `127.0.0.1:${port}`, '--fdname=web'], mode, notifyAddress)
    await waitUntil(() => c.stderr.includes('Listening on'), () => `systemd-socket-activate listening (stderr: ${c.stderr})`)
    // The first connection makes systemd-socket-activate exec the server with the socket as fd 3.
    const peer = await nodeClient(port)
    peer.sock.write('hello systemd')
    await peer.waitText('hello systemd')
    const ready = JSON.parse(await c.line('READY '))
    t.deepEqual(ready.listeners, [{ fd: 3, name: 'web', family: AddressFamily.INET, type: SocketType.STREAM }])
    const notified = JSON.parse(await r.line('GOT '))
    t.is(notified.state, 'READY=1\nSTATUS=echoing on web')
    const second = await nodeClient(port)
    second.sock.write('again')
    await second.waitText('again')
    second.destroy()
    peer.destroy()
    c.proc.kill('SIGTERM')
    const exit = await c.wait()
    t.is(exit.code, 0, exit.stderr)
    t.true(exit.stdout.includes('STOPPED'))
    await r.wait()
    t.is(JSON.parse(r.stdout.split('\n').filter((l) => l.startsWith('GOT '))[1].slice(4)).state, 'STOPPING=1')
  }))

  withActivate(`${tag} WatchdogSec=: with WATCHDOG_USEC set, the example server notifies READY=1, then WATCHDOG=1 every half interval`, (t) => slot(async () => {
    const port = freePort()
    const notifyAddress = `@reactor-socket-test-${process.pid}-watchdog-${mode.name}`
    const r = receiver(notifyAddress, 3)
    await r.line('BOUND')
    // 400 ms: a keepalive every 200 ms, so two arrive well within the deadline below.
    const c = activate(['-l', `127.0.0.1:${port}`, '--fdname=web'], mode, notifyAddress, ['WATCHDOG_USEC=400000'])
    await waitUntil(() => c.stderr.includes('Listening on'), () => `systemd-socket-activate listening (stderr: ${c.stderr})`)
    const peer = await nodeClient(port) // makes systemd-socket-activate exec the server
    const got = () => r.stdout.split('\n').filter((l) => l.startsWith('GOT ')).map((l) => JSON.parse(l.slice(4)).state as string)
    await waitUntil(() => got().length >= 1, 'READY=1 at the receiver')
    const ready = Date.now()
    await waitUntil(() => got().length >= 3, () => `two WATCHDOG=1 after READY=1 (got ${JSON.stringify(got())})`, 3000)
    const elapsed = Date.now() - ready
    t.deepEqual(got(), ['READY=1\nSTATUS=echoing on web', 'WATCHDOG=1', 'WATCHDOG=1'])
    t.true(elapsed >= 300, `the keepalives come every half interval, not at once (${elapsed} ms after READY=1)`)
    t.is((await r.wait()).code, 0)
    peer.destroy()
    c.proc.kill('SIGTERM')
    const stopped = await c.wait()
    t.is(stopped.code, 0, stopped.stderr)
  }))

  withActivate(`${tag} systemd-socket-activate --datagram: the example server echoes UDP`, (t) => slot(async () => {
    const port = (() => {
      const fd = bindUdp4()
      const p = portOf(fd)
      closeFd(fd)
      return p
    })()
    const notifyAddress = `@reactor-socket-test-${process.pid}-activate-dgram-${mode.name}`
    const r = receiver(notifyAddress)
    await r.line('BOUND')
    const c = activate(['--datagram', '-l', `127.0.0.1:${port}`, '--fdname=dns'], mode, notifyAddress)
    await waitUntil(() => c.stderr.includes('Listening on'), () => `systemd-socket-activate listening (stderr: ${c.stderr})`)
    const u = await udpPeer('udp4')
    try {
      await sendUntil(() => void u.send('ping', port, '127.0.0.1'), () => u.got.length > 0, 'a UDP echo')
      t.is(u.got[0].data.toString(), 'ping')
      const ready = JSON.parse(await c.line('READY '))
      t.deepEqual(ready.listeners, [{ fd: 3, name: 'dns', family: AddressFamily.INET, type: SocketType.DGRAM }])
      t.is(JSON.parse(await r.line('GOT ')).state, 'READY=1\nSTATUS=echoing on dns')
    } finally {
      u.close()
    }
    c.proc.kill('SIGTERM')
    const exit = await c.wait()
    t.is(exit.code, 0, exit.stderr)
  }))
}

test('the example units name their sockets and use Type=notify', (t) => {
  const dir = path.join(process.cwd(), 'examples', 'systemd')
  const socketUnit = fs.readFileSync(path.join(dir, 'echo.socket'), 'utf8')
  const serviceUnit = fs.readFileSync(path.join(dir, 'echo.service'), 'utf8')
  t.regex(socketUnit, /^FileDescriptorName=\S+/m)
  t.regex(socketUnit, /^ListenStream=/m)
  t.regex(serviceUnit, /^Type=notify$/m)
  t.regex(serviceUnit, /^ExecStart=.*examples\/systemd\/server\.js$/m)
})
