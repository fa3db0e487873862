// The handoff guarantee, end to end: the example server (examples/handoff/server.js) replaces
// itself 5 times in a row on SIGHUP while clients keep connecting. Counted: connection attempts,
// refused, reset, bytes echoed and checked. Every old process must drain its connections and
// exit with no socket left open; the offer's path must be gone at the end. Both reactor modes.
import test from 'ava'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { Child, MODES, tmpSockPath, waitUntil, within } from './helpers.js'

const EXAMPLE = path.join(process.cwd(), 'examples', 'handoff', 'server.js')
const HANDOFFS = 5

const pids = new Set<number>()
const kids: Child[] = []
test.after.always(() => {
  for (const k of kids) k.kill()
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
})

/** Alive and not a zombie (a reparented process may wait for a reaper that never comes). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

interface Counts {
  attempts: number
  completed: number
  refused: number
  reset: number
  otherErrors: string[]
  corrupted: number
  bytesChecked: number
}

/** Connects, sends random bytes, checks that exactly those come back, closes. */
function exchange(port: number, counts: Counts, messages: number, size: () => number, gapMs: number): Promise<void> {
  counts.attempts++
  return new Promise<void>((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let expected = Buffer.alloc(0)
    let received = Buffer.alloc(0)
    let sent = 0
    let failed = false
    const sendNext = () => {
      const chunk = randomBytes(size())
      expected = Buffer.concat([expected, chunk])
      sent++
      sock.write(chunk)
    }
    sock.on('connect', sendNext)
    sock.on('data', (data) => {
      received = Buffer.concat([received, data])
      if (received.length > expected.length || !received.equals(expected.subarray(0, received.length))) {
        counts.corrupted++
        failed = true
        sock.destroy()
        return
      }
      if (received.length === expected.length) {
        counts.bytesChecked += expected.length
        expected = Buffer.alloc(0)
        received = Buffer.alloc(0)
        if (sent < messages) setTimeout(sendNext, gapMs)
        else sock.end()
      }
    })
    sock.on('error', (err: NodeJS.ErrnoException) => {
      failed = true
      if (err.code === 'ECONNREFUSED') counts.refused++
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') counts.reset++
      else counts.otherErrors.push(String(err.code ?? err.message))
    })
    sock.on('close', () => {
      if (!failed && sent === messages && expected.length === 0) counts.completed++
      else if (!failed) counts.otherErrors.push('closed before every byte came back')
      resolve()
    })
  })
}

/** Short connections (one message each) on 8 loops, long ones (about 1 s, a message every 10 ms) on 4. */
function startLoad(port: number) {
  const counts: Counts = { attempts: 0, completed: 0, refused: 0, reset: 0, otherErrors: [], corrupted: 0, bytesChecked: 0 }
  let running = true
  const loop = async (messages: number, size: () => number, gapMs: number) => {
    while (running) await exchange(port, counts, messages, size, gapMs)
  }
  const loops = [
    ...Array.from({ length: 8 }, () => loop(1, () => 1 + Math.floor(Math.random() * 32768), 0)),
    ...Array.from({ length: 4 }, () => loop(100, () => 256, 10)),
  ]
  return {
    counts,
    async stop(): Promise<Counts> {
      running = false
      await within(Promise.all(loops), 'the load loops to finish', 20000)
      return counts
    },
  }
}

interface Line {
  event: string
  pid: number
  generation: number
  [key: string]: unknown
}

function lines(c: Child): Line[] {
  return c.stdout
    .split('\n')
    .filter((l) => /^[A-Z_]+ \{/.test(l))
    .map((l) => {
      const space = l.indexOf(' ')
      return { event: l.slice(0, space), ...JSON.parse(l.slice(space + 1)) }
    })
}

const find = (c: Child, event: string, generation: number) =>
  lines(c).find((l) => l.event === event && l.generation === generation)

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} ${HANDOFFS} handoffs in a row under continuous load: none refused, none reset, every byte checked, old processes drain and exit`, async (t) => {
    t.timeout(60000)
    const socketPath = tmpSockPath('load')
    const args = [EXAMPLE, '--port', '0', '--path', socketPath, ...(mode.thread ? [] : ['--no-thread'])]
    const server = new Child(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    kids.push(server)
    await waitUntil(() => find(server, 'READY', 1) !== undefined || !server.alive, 'the first server', 10000)
    const first = find(server, 'READY', 1)
    if (!first) return t.fail(`the server did not start: ${server.stderr}`)
    pids.add(first.pid)
    const port = first.port as number
    const load = startLoad(port)
    const started = Date.now()
    await waitUntil(() => load.counts.completed >= 100, () => `load to warm up (${JSON.stringify(load.counts)})`, 15000)

    for (let generation = 2; generation <= HANDOFFS + 1; generation++) {
      const current = find(server, 'READY', generation - 1)!
      process.kill(current.pid, 'SIGHUP')
      await waitUntil(() => find(server, 'READY', generation) !== undefined, () => `generation ${generation} ready (${server.stdout}${server.stderr})`, 15000)
      pids.add(find(server, 'READY', generation)!.pid)
      // Let traffic flow through the new process (and the old one drain) before the next handoff.
      const done = load.counts.completed
      const since = Date.now()
      await waitUntil(
        () => load.counts.completed >= done + 100 && Date.now() - since >= 1000,
        () => `traffic after handoff ${generation - 1}`,
        15000,
      )
    }
    // The replaced processes drain (long connections end within about a second) and exit.
    for (let generation = 1; generation <= HANDOFFS; generation++) {
      await waitUntil(() => find(server, 'DRAINED', generation) !== undefined, `generation ${generation} drained`, 15000)
    }
    const counts = await load.stop()
    const seconds = (Date.now() - started) / 1000
    const last = find(server, 'READY', HANDOFFS + 1)!
    for (let generation = 1; generation <= HANDOFFS; generation++) {
      const pid = find(server, 'READY', generation)!.pid
      await waitUntil(() => !isAlive(pid), `generation ${generation} (pid ${pid}) to exit`, 10000)
    }
    const drained = lines(server).filter((l) => l.event === 'DRAINED')
    t.log(
      `${tag} ${HANDOFFS} handoffs in ${seconds.toFixed(1)} s: ${counts.attempts} connection attempts, ` +
        `${counts.completed} completed, ${counts.refused} refused, ${counts.reset} reset, ` +
        `${counts.corrupted} corrupted, ${counts.otherErrors.length} other errors, ` +
        `${counts.bytesChecked} bytes echoed and checked; served per generation: ` +
        drained.map((l) => l.served).join(', '),
    )
    t.is(counts.refused, 0)
    t.is(counts.reset, 0)
    t.is(counts.corrupted, 0)
    t.deepEqual(counts.otherErrors, [])
    t.is(counts.completed, counts.attempts, 'every connection attempt completed')
    t.true(counts.bytesChecked > 0)
    t.true(drained.every((l) => l.sockets === 0), `old processes closed every socket: ${JSON.stringify(drained)}`)
    t.true(drained.every((l) => (l.served as number) > 0), 'every generation served connections')
    t.false(lines(server).some((l) => l.event === 'HANDOFF_FAILED' || l.event === 'ERROR'))

    // The last one stops on SIGTERM; the offer's path never outlives a handoff.
    process.kill(last.pid, 'SIGTERM')
    await waitUntil(() => !isAlive(last.pid), 'the last server to exit', 10000)
    t.is(find(server, 'DRAINED', HANDOFFS + 1)?.sockets, 0)
    t.false(fs.existsSync(socketPath))
    t.is(server.stderr, '')
  })
}
