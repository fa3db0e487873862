// Faults: out of descriptors. What emfile.spec.ts does not cover: a flood of 1,000 connection
// attempts against a child whose RLIMIT_NOFILE is used up (set with prlimit, or ulimit as a fallback),
// every client served or closed cleanly (never reset, never left hanging), no protocol built while
// out of descriptors, the child's CPU under 20% of one core measured from /proc/<pid>/task/*/stat,
// then service resuming by itself as descriptors are freed (some served, the rest closed cleanly,
// then every client served).
import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { execFileSync, spawn } from 'node:child_process'
import {
  MODES,
  fixture,
  Child,
  hasCommand,
  within,
  limiter,
  quietPeriod,
  waitUntil,
} from '../helpers.js'

const NOFILE = 256
const ATTEMPTS = 1000
const kids: Child[] = []
test.after.always(() => kids.forEach((k) => k.kill()))

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
  } catch {
    return 100
  }
})()

/** CPU time (seconds) of each thread of `pid`, by thread name, from /proc/<pid>/task/<tid>/stat. */
function threadCpu(pid: number): { total: number; byThread: Map<string, number> } {
  const byThread = new Map<string, number>()
  let total = 0
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const secs = (Number(fields[11]) + Number(fields[12])) / CLK_TCK // utime + stime
      const key = Number(tid) === pid ? 'main' : `${comm}#${tid}`
      byThread.set(key, secs)
      total += secs
    } catch {
      // the thread ended meanwhile
    }
  }
  return { total, byThread }
}

function spawnLimited(mode: string): Child {
  const node = process.execPath
  const file = fixture('faults-emfile.mjs')
  const proc = hasCommand('prlimit')
    ? spawn('prlimit', [`--nofile=${NOFILE}:${NOFILE}`, node, file, mode], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('/bin/sh', ['-c', `ulimit -n ${NOFILE} && exec "$0" "$@"`, node, file, mode], { stdio: ['pipe', 'pipe', 'pipe'] })
  const c = new Child(proc)
  kids.push(c)
  return c
}

type Outcome = 'served' | 'closed' | 'hang' | `error ${string}` | `bad ${string}`

/** How many attempts so far were greeted (served, maybe holding), closed without data, or failed. */
interface Progress {
  greeted: number
  closed: number
  failed: number
}

/**
 * One connection attempt. The server greets every client it serves; a client it cannot serve must
 * see a clean close (FIN, no data). A served client waits for `hold`, then checks an echo and ends.
 */
function attempt(port: number, hold?: Promise<void>, progress?: Progress, ms = 15000): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let got = ''
    let settled = false
    const done = (o: Outcome) => {
      if (settled) return
      settled = true
      if (progress && o !== 'served' && o !== 'closed') progress.failed++
      clearTimeout(timer)
      resolve(o)
    }
    const timer = setTimeout(() => {
      sock.destroy()
      done('hang')
    }, ms)
    sock.setEncoding('utf8')
    sock.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code}`))
    sock.on('end', () => {
      if (got === '') {
        if (progress) progress.closed++
        done('closed')
      }
      else if (got !== 'hello\nping\n') done(`bad ended after ${JSON.stringify(got)}`)
    })
    sock.on('data', async (d: string) => {
      got += d
      if (got === 'hello\n') {
        if (progress) progress.greeted++
        if (hold) await hold
        sock.write('ping\n')
      } else if (got === 'hello\nping\n') {
        sock.end()
        sock.once('close', () => done('served'))
      }
    })
  })
}

async function flood(
  port: number,
  n: number,
  concurrency: number,
  hold?: Promise<void>,
  progress?: Progress,
): Promise<Map<string, number>> {
  const slot = limiter(concurrency)
  const outcomes = await Promise.all(Array.from({ length: n }, () => slot(() => attempt(port, hold, progress))))
  const tally = new Map<string, number>()
  for (const o of outcomes) tally.set(o, (tally.get(o) ?? 0) + 1)
  return tally
}

async function stats(c: Child): Promise<{ built: number; lost: number; live: number; fds: number }> {
  c.stdout = c.stdout.replace(/^STATS .*\n/gm, '')
  c.send('stats\n')
  return JSON.parse(await c.line('STATS '))
}

for (const mode of MODES) {
  test.serial(`[${mode.name}] 1,000 attempts while out of descriptors: all closed cleanly, none built, CPU < 20%, service resumes`, async (t) => {
    const c = spawnLimited(mode.name)
    const port = Number(await c.line('PORT '))

    // Sanity: served while descriptors are free.
    t.is(await attempt(port), 'served')

    c.send('hog\n')
    const hogged = Number(await c.line('HOGGED '))
    t.true(hogged > 0 && hogged < NOFILE, `hogged ${hogged}`)
    const builtBefore = (await stats(c)).built

    // Phase 1: 1,000 attempts while the child has no descriptor left.
    const cpu0 = threadCpu(c.proc.pid!)
    const t0 = process.hrtime.bigint()
    const tally = await flood(port, ATTEMPTS, 100)
    await quietPeriod(1000, 'a busy loop in the child, still out of descriptors')
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu1 = threadCpu(c.proc.pid!)
    t.deepEqual(Object.fromEntries(tally), { closed: ATTEMPTS }, 'every client sees a clean close, none hangs or is reset')

    const share = (cpu1.total - cpu0.total) / wall
    const perThread = [...cpu1.byThread].map(([k, v]) => [k, (v - (cpu0.byThread.get(k) ?? 0)) / wall] as const)
    const io = perThread.filter(([k]) => (mode.thread ? k.startsWith('reactor-io') : k === 'main'))
    t.log(
      `CPU over ${wall.toFixed(2)} s out of descriptors: process ${(share * 100).toFixed(1)}%, ` +
        perThread
          .filter(([, v]) => v > 0)
          .map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`)
          .join(', '),
    )
    t.true(share < 0.2, `the process stays under 20% of one core (${(share * 100).toFixed(1)}%)`)
    t.true(io.length >= 1, 'the loop thread was found')
    for (const [k, v] of io) t.true(v < 0.2, `${k} does not spin (${(v * 100).toFixed(1)}%)`)

    // The child cannot read /proc/self/fd now (that needs a descriptor), but it can count.
    const s1 = await stats(c)
    t.is(s1.built, builtBefore, 'no protocol built for the refused clients')

    // Phase 2: a few descriptors come back. Clients that are served hold their connection, so the
    // child runs out again: some are served, the rest closed cleanly, none hang.
    const FREE = 24
    c.send(`free ${FREE}\n`)
    await c.line('FREED ')
    let release!: () => void
    const hold = new Promise<void>((r) => (release = r))
    const N2 = 200
    const progress: Progress = { greeted: 0, closed: 0, failed: 0 }
    const phase2 = flood(port, N2, N2, hold, progress)
    // Every client is either greeted (served, holding its descriptor) or closed by the shedding;
    // none may wait in the backlog. Only then let the served ones finish: a client still queued
    // at that point would be served with a descriptor a finished one gave back.
    await waitUntil(
      () => progress.greeted + progress.closed + progress.failed === N2,
      'every phase-2 client greeted or closed',
      15000,
      20,
    )
    t.is(progress.failed, 0, 'no client reset or left hanging')
    const live = (await stats(c)).live
    t.true(progress.greeted >= 1 && progress.greeted <= FREE, `service resumed for the freed descriptors (${progress.greeted} greeted)`)
    t.is(live, progress.greeted, 'the child holds exactly the greeted clients')
    release()
    const tally2 = await within(phase2, 'phase 2 clients', 20000)
    const served2 = tally2.get('served') ?? 0
    const closed2 = tally2.get('closed') ?? 0
    t.log(`phase 2 (${FREE} descriptors freed, ${N2} clients holding): ${JSON.stringify(Object.fromEntries(tally2))}`)
    t.is(served2 + closed2, N2, `only served or cleanly closed: ${JSON.stringify(Object.fromEntries(tally2))}`)
    t.is(served2, progress.greeted, 'each greeted client was served to the end, no other')
    const s3 = await stats(c)
    t.is(s3.built - builtBefore, served2, 'a protocol was built exactly for each served client')

    // Phase 3: the served connections are gone, so their descriptors are free again.
    await waitUntil(async () => (await stats(c)).live === 0, 'the served connections to close', 10000, 50)
    const tally3 = await flood(port, 50, 10)
    t.deepEqual(Object.fromEntries(tally3), { served: 50 }, 'service resumed by itself')

    c.send('quit\n')
    const res = await c.wait()
    t.is(res.code, 0, res.stderr)
    t.is(res.signal, null)
    t.notRegex(res.stdout, /ONERROR/)
  })
}
