// Restarting under systemd without refusing a connection, both recipes of examples/systemd-restart,
// run unchanged under a stand-in for systemd's service manager (__test__/fixtures/service-manager.py:
// no systemd runs as PID 1 here). The stand-in keeps the rules the recipes depend on: the sender
// of each notification from SCM_CREDENTIALS, NotifyAccess=main|all, MAINPID= only to a process of
// the service, the main process's exit ending the service (and the rest of it killed), the fd
// store (FDSTORE=1, FDNAME=, FileDescriptorStoreMax=) passed back on restart as LISTEN_FDS /
// LISTEN_FDNAMES with LISTEN_PID the new process's own pid.
//
// (a) handoff + MAINPID= (NotifyAccess=all): reload twice under continuous load.
// (b) the fd store: restart under continuous load.
// Each with its counter-example: NotifyAccess=main (the service dies at the handoff, the
// successor is killed) and FileDescriptorStoreMax=0 (the restart comes up on a new socket).
import test from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { MODES, fixture, Child, hasCommand, waitUntil } from '../helpers.js'
// @ts-expect-error: a plain ES module without types
import { startLoad, isAlive } from '../../scripts/handoff-soak.mjs'

const HAS_PYTHON = hasCommand('python3')
// Serial: each runs a client load and several node processes on two cores.
const withPython = HAS_PYTHON ? test.serial : test.serial.skip
if (!HAS_PYTHON) console.log('systemd-restart.spec: python3 is missing (the service manager stand-in); these tests are skipped')

const EXAMPLES = path.join(process.cwd(), 'examples', 'systemd-restart')
const HANDOFF_SERVER = path.join(EXAMPLES, 'handoff-server.mjs')
const FDSTORE_SERVER = path.join(EXAMPLES, 'fdstore-server.mjs')

type Event = { event: string; [field: string]: any }
type Counts = { attempts: number; completed: number; refused: number; reset: number; corrupted: number; otherErrors: string[]; bytesChecked: number }

const pids = new Set<number>()
const managers: Child[] = []
const dirs: string[] = []
test.after.always(() => {
  for (const m of managers) m.kill()
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** This process's environment without systemd's variables. */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete env[name]
  return env
}

/** The stand-in service manager running one service; events and the service's lines from stdout. */
class Manager {
  readonly c: Child
  readonly dir: string
  constructor(config: Record<string, unknown>) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-sd-restart-')) // 0700: the RuntimeDirectory=
    dirs.push(this.dir)
    // The directory doubles as the service's RuntimeDirectory= (the handoff socket's).
    const env = { ...(config.env as object), RUNTIME_DIRECTORY: this.dir }
    const full = { notifySocket: path.join(this.dir, 'notify'), timeoutStartSec: 10, timeoutStopSec: 15, ...config, env }
    this.c = new Child(spawn('python3', [fixture('service-manager.py'), JSON.stringify(full)], { stdio: ['pipe', 'pipe', 'pipe'], env: baseEnv() }))
    managers.push(this.c)
  }
  /** Lines `<PREFIX> {json}`, parsed. */
  lines(prefix: string): Event[] {
    return this.c.stdout
      .split('\n')
      .filter((l) => l.startsWith(prefix + ' {'))
      .map((l) => ({ event: prefix, ...JSON.parse(l.slice(prefix.length + 1)) }))
  }
  events(): Event[] {
    return this.c.stdout
      .split('\n')
      .filter((l) => l.startsWith('MANAGER {'))
      .map((l) => JSON.parse(l.slice('MANAGER '.length)) as Event)
  }
  private async wait(find: () => Event | undefined, what: string, ms: number): Promise<Event> {
    let found: Event | undefined
    await waitUntil(
      () => {
        found = find()
        if (!found && !this.c.alive) throw new Error(`the manager exited before ${what}:\n${this.c.stdout}\n${this.c.stderr}`)
        return found !== undefined
      },
      () => `${what}\nstdout:\n${this.c.stdout}\nstderr:\n${this.c.stderr}`,
      ms,
    )
    for (const e of [...this.events(), ...this.lines('READY'), ...this.lines('HANDOFF')]) {
      for (const key of ['pid', 'new', 'successor']) if (typeof e[key] === 'number') pids.add(e[key])
    }
    return found!
  }
  event(match: (e: Event) => boolean, what: string, ms = 15000): Promise<Event> {
    return this.wait(() => this.events().find(match), `manager event: ${what}`, ms)
  }
  line(prefix: string, match: (e: Event) => boolean, what: string, ms = 15000): Promise<Event> {
    return this.wait(() => this.lines(prefix).find(match), `service line ${prefix}: ${what}`, ms)
  }
  send(command: string) {
    this.c.proc.stdin!.write(command + '\n')
  }
  async quit() {
    this.send('quit')
    const exit = await this.c.wait(20000)
    return exit
  }
}

/** The load's promises: nothing refused, reset, corrupted or left unfinished; a few hundred done. */
function assertNoFailure(t: any, counts: Counts) {
  t.log(`${counts.attempts} connections, ${counts.completed} completed, ${counts.bytesChecked} bytes echoed and checked`)
  t.is(counts.refused, 0, 'no connection refused')
  t.is(counts.reset, 0, 'no connection reset')
  t.is(counts.corrupted, 0, 'no wrong byte')
  t.deepEqual(counts.otherErrors, [])
  t.is(counts.completed, counts.attempts, 'every connection completed')
  t.true(counts.attempts >= 200, `a few hundred connections (${counts.attempts})`)
}

/** Waits until `more` further connections completed. */
async function traffic(load: { counts: Counts }, more: number, what: string) {
  const done = load.counts.completed
  await waitUntil(() => load.counts.completed >= done + more, () => `${more} connections ${what} (${JSON.stringify(load.counts)})`, 15000)
}

const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const env = { REACTOR_THREAD: mode.thread ? '1' : '0' }

  withPython(`${tag} (a) handoff + MAINPID= with NotifyAccess=all: two reloads under load, none refused or reset; each successor becomes the main process, runs with the same node options, and serves`, async (t) => {
    t.timeout(30000)
    const m = new Manager({
      // A node option on the command line: each successor must run with it too.
      exec: [process.execPath, '--enable-source-maps', HANDOFF_SERVER],
      env,
      notifyAccess: 'all',
      sockets: [{ name: 'web', host: '127.0.0.1', port: 0 }],
    })
    const { port } = await m.event((e) => e.event === 'listening', 'the socket unit listens')
    let main = (await m.event((e) => e.event === 'ready', 'READY=1 from the first process')).pid as number
    t.like(await m.line('READY', (e) => e.pid === main, 'the first process'), { took: false, ports: [{ name: 'web', port }] })
    const load = startLoad(port)
    try {
      await traffic(load, 100, 'before the first reload')
      for (let reload = 1; reload <= 2; reload++) {
        const old = main
        m.send('reload')
        const { successor } = await m.line('HANDOFF', (e) => e.pid === old, `HANDOFF ${reload}`)
        const moved = await m.event((e) => e.event === 'mainpid' && e.old === old, `MAINPID= moves the main process (reload ${reload})`)
        t.deepEqual([moved.new, moved.sender], [successor, successor], 'the successor told the manager it is the main process')
        t.true(cmdline(successor).includes('--enable-source-maps'), 'the successor runs with the same node options')
        t.like(await m.line('READY', (e) => e.pid === successor, `the successor (reload ${reload})`), { took: true, ports: [{ name: 'web', port }] })
        const exited = await m.event((e) => e.event === 'exited' && e.pid === old, `the predecessor exits (reload ${reload})`)
        t.like(exited, { main: false, code: 0 }, 'the predecessor exits as an ordinary process of the service, not as its main one')
        main = successor
        await traffic(load, 100, `after reload ${reload}`)
      }
    } finally {
      assertNoFailure(t, await load.stop())
    }
    t.deepEqual(m.events().filter((e) => e.event === 'dead' || e.event === 'killed'), [], 'the service never died, nothing was killed')
    m.send('stop')
    await m.event((e) => e.event === 'stopped', 'the stop')
    const drained = m.lines('DRAINED')
    t.is(drained.length, 3, 'three processes, each drained')
    t.true(drained.every((d) => d.served > 0), `each served: ${JSON.stringify(drained)}`)
    t.is((await m.quit()).code, 0)
    t.deepEqual(fs.readdirSync(m.dir), [], 'the handoff and notify sockets are gone')
  })

  withPython(`${tag} (b) the fd store: a restart under load, none refused or reset; the socket comes back as LISTEN_FDNAMES=web and the new process serves it`, async (t) => {
    t.timeout(30000)
    const m = new Manager({ exec: [process.execPath, FDSTORE_SERVER], env: { ...env, PORT: '0' }, notifyAccess: 'main', fdStoreMax: 4 })
    const stored = await m.event((e) => e.event === 'stored', 'FDSTORE=1 from the first process')
    t.is(stored.name, 'web')
    const first = (await m.event((e) => e.event === 'ready', 'READY=1 from the first process')).pid as number
    const { port } = await m.line('READY', (e) => e.pid === first, 'the first process')
    t.is(m.lines('READY')[0].restored, false)
    const load = startLoad(port)
    let second: number
    try {
      await traffic(load, 100, 'before the restart')
      m.send('restart')
      await m.event((e) => e.event === 'exited' && e.pid === first, 'the first process exits')
      const started = await m.event((e) => e.event === 'started' && e.pid !== first, 'the second process starts')
      t.deepEqual(started.fds, ['web'], 'the stored socket is passed, by its name')
      second = started.pid
      t.like(await m.line('READY', (e) => e.pid === second, 'the second process'), { port, restored: true })
      await traffic(load, 100, 'after the restart')
    } finally {
      assertNoFailure(t, await load.stop())
    }
    t.is(m.events().filter((e) => e.event === 'stored').length, 1, 'the restored socket is not stored twice')
    t.deepEqual(m.events().filter((e) => e.event === 'dead'), [])
    m.send('stop')
    await m.event((e) => e.event === 'stopped', 'the stop')
    const drained = m.lines('DRAINED')
    t.deepEqual(drained.map((d) => d.pid), [first, second!])
    t.true(drained[1].served > 0, 'the new process served')
    t.is((await m.quit()).code, 0)
  })
}

withPython('(a) counter-example: with NotifyAccess=main the successor\'s MAINPID= is ignored, the old main process\'s exit ends the service, and the successor is killed', async (t) => {
  t.timeout(30000)
  const m = new Manager({ exec: [process.execPath, HANDOFF_SERVER], env: {}, notifyAccess: 'main', sockets: [{ name: 'web', host: '127.0.0.1', port: 0 }] })
  const main = (await m.event((e) => e.event === 'ready', 'READY=1')).pid
  m.send('reload')
  const { successor } = await m.line('HANDOFF', (e) => e.pid === main, 'HANDOFF')
  const ignored = await m.event((e) => e.event === 'notify' && e.pid === successor, "the successor's notification")
  t.like(ignored, { accepted: false, state: `MAINPID=${successor}\nREADY=1\nSTATUS=serving (took over)` })
  await m.event((e) => e.event === 'exited' && e.pid === main, 'the old main process exits')
  t.like(await m.event((e) => e.event === 'dead', 'the end of the service'), { pid: main })
  t.like(await m.event((e) => e.event === 'killed' && e.pid === successor, 'the successor killed'), { signal: 'SIGTERM' })
  await m.event((e) => e.event === 'stopped', 'the service stopped')
  t.false(m.events().some((e) => e.event === 'mainpid'))
  t.is((await m.quit()).code, 0)
})

withPython('(b) counter-example: with FileDescriptorStoreMax=0 the store refuses the socket and the restarted process binds a new one (the old port refuses)', async (t) => {
  t.timeout(30000)
  const m = new Manager({ exec: [process.execPath, FDSTORE_SERVER], env: { PORT: '0' }, notifyAccess: 'main', fdStoreMax: 0 })
  t.like(await m.event((e) => e.event === 'fdstore-refused', 'the refusal'), { name: 'web', why: 'FileDescriptorStoreMax=0' })
  const first = (await m.event((e) => e.event === 'ready', 'READY=1')).pid
  const { port } = await m.line('READY', (e) => e.pid === first, 'the first process')
  m.send('restart')
  const started = await m.event((e) => e.event === 'started' && e.pid !== first, 'the second process starts')
  t.deepEqual(started.fds, [], 'nothing to pass')
  const second = await m.line('READY', (e) => e.pid === started.pid, 'the second process')
  t.false(second.restored)
  const refused = await new Promise<string | undefined>((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    sock.once('connect', () => resolve(undefined))
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code))
  })
  t.is(refused, 'ECONNREFUSED', 'the socket closed with the first process')
  t.is((await m.quit()).code, 0)
})

test('the example units: handoff with Type=notify, NotifyAccess=all, ExecReload=kill -HUP $MAINPID, a RuntimeDirectory= and a named socket; the fd store with FileDescriptorStoreMax=', (t) => {
  const unit = (name: string) => fs.readFileSync(path.join(EXAMPLES, name), 'utf8')
  const handoffService = unit('echo-handoff.service')
  t.regex(handoffService, /^Type=notify$/m)
  t.regex(handoffService, /^NotifyAccess=all$/m)
  t.regex(handoffService, /^ExecReload=\S*kill -HUP \$MAINPID$/m)
  t.regex(handoffService, /^RuntimeDirectory=\S+$/m)
  t.regex(handoffService, /^RuntimeDirectoryMode=0700$/m)
  t.regex(handoffService, /^ExecStart=.*examples\/systemd-restart\/handoff-server\.mjs$/m)
  const handoffSocket = unit('echo-handoff.socket')
  t.regex(handoffSocket, /^ListenStream=/m)
  t.regex(handoffSocket, /^FileDescriptorName=web$/m, 'the name the server looks for')
  const fdstoreService = unit('echo-fdstore.service')
  t.regex(fdstoreService, /^Type=notify$/m)
  t.regex(fdstoreService, /^FileDescriptorStoreMax=[1-9]\d*$/m)
  t.regex(fdstoreService, /^ExecStart=.*examples\/systemd-restart\/fdstore-server\.mjs$/m)
})
