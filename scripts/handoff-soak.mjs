#!/usr/bin/env node
// Handoff under load: runs examples/handoff/server.js, keeps clients connecting, and makes the
// server replace itself N times in a row (SIGHUP). Counts connection attempts, refused, reset,
// corrupted, bytes echoed and checked; checks that every replaced process drained and exited with
// no socket left open, and that the offer's path is gone at the end.
//
//   node scripts/handoff-soak.mjs [--handoffs 5] [--settle 1000] [--mode thread|no-thread|both]
//
// Also used by __test__/deploy/handoff-load.spec.ts (startLoad by systemd-restart.spec.ts) and as
// the last phase of `npm run soak`.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const EXAMPLE = path.join(HERE, '..', 'examples', 'handoff', 'server.js')

/** Alive and not a zombie (a reparented process may wait for a reaper that never comes). */
export function isAlive(pid) {
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

async function waitFor(cond, what, ms) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** One connection: `messages` chunks of random bytes, each checked when it comes back. */
function exchange(port, counts, messages, size, gapMs) {
  counts.attempts++
  return new Promise((resolve) => {
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
    sock.on('error', (err) => {
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

/** 8 loops of short connections (one message of 1 B–32 KiB) and 4 of long ones (about 1 s,
 *  256 B every 10 ms), until stopped. */
export function startLoad(port) {
  const counts = { attempts: 0, completed: 0, refused: 0, reset: 0, corrupted: 0, otherErrors: [], bytesChecked: 0 }
  let running = true
  const loop = async (messages, size, gapMs) => {
    while (running) await exchange(port, counts, messages, size, gapMs)
  }
  const loops = [
    ...Array.from({ length: 8 }, () => loop(1, () => 1 + Math.floor(Math.random() * 32768), 0)),
    ...Array.from({ length: 4 }, () => loop(100, () => 256, 10)),
  ]
  return {
    counts,
    async stop() {
      running = false
      await Promise.all(loops)
      return counts
    },
  }
}

/** The server's JSON event lines (READY, HANDOFF, DRAINED, ...), from every generation. */
function events(stdout) {
  return stdout
    .split('\n')
    .filter((l) => /^[A-Z_]+ \{/.test(l))
    .map((l) => {
      const space = l.indexOf(' ')
      return { event: l.slice(0, space), ...JSON.parse(l.slice(space + 1)) }
    })
}

/**
 * Runs the server and `handoffs` replacements under load. Resolves with the counts and what
 * each generation reported; `problems` lists every broken promise (empty when all held).
 * `pids` collects every generation's pid as soon as it is known (for cleanup by the caller).
 */
export async function handoffUnderLoad({ thread = true, handoffs = 5, settleMs = 1000, pids = new Set() } = {}) {
  const socketPath = path.join(os.tmpdir(), `reactor-socket-handoff-soak-${process.pid}-${thread ? 't' : 'n'}-${Date.now()}.sock`)
  const args = [EXAMPLE, '--port', '0', '--path', socketPath, ...(thread ? [] : ['--no-thread'])]
  const server = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  server.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  server.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const find = (event, generation) => events(stdout).find((l) => l.event === event && l.generation === generation)
  let load = null
  try {
    await waitFor(() => find('READY', 1) || server.exitCode !== null, 'the first server', 10000)
    const first = find('READY', 1)
    if (!first) throw new Error(`the server did not start: ${stderr}`)
    pids.add(first.pid)
    load = startLoad(first.port)
    const started = Date.now()
    await waitFor(() => load.counts.completed >= 100, () => `load to warm up (${JSON.stringify(load.counts)})`, 15000)
    for (let generation = 2; generation <= handoffs + 1; generation++) {
      process.kill(find('READY', generation - 1).pid, 'SIGHUP')
      await waitFor(() => find('READY', generation), () => `generation ${generation} ready (${stdout}${stderr})`, 15000)
      pids.add(find('READY', generation).pid)
      // Traffic through the new process (and the old one draining) before the next handoff.
      const done = load.counts.completed
      const since = Date.now()
      await waitFor(() => load.counts.completed >= done + 100 && Date.now() - since >= settleMs, `traffic after handoff ${generation - 1}`, 15000)
    }
    for (let generation = 1; generation <= handoffs; generation++) {
      await waitFor(() => find('DRAINED', generation), `generation ${generation} to drain`, 15000)
    }
    const counts = await load.stop()
    load = null
    const seconds = (Date.now() - started) / 1000
    for (let generation = 1; generation <= handoffs; generation++) {
      const pid = find('READY', generation).pid
      await waitFor(() => !isAlive(pid), `generation ${generation} (pid ${pid}) to exit`, 10000)
    }
    const last = find('READY', handoffs + 1)
    process.kill(last.pid, 'SIGTERM')
    await waitFor(() => !isAlive(last.pid), 'the last server to exit', 10000)
    await waitFor(() => find('DRAINED', handoffs + 1), 'the last server to report', 5000)
    const all = events(stdout)
    const drained = all.filter((l) => l.event === 'DRAINED').sort((a, b) => a.generation - b.generation)
    const problems = []
    if (counts.refused) problems.push(`${counts.refused} connection attempts refused`)
    if (counts.reset) problems.push(`${counts.reset} connections reset`)
    if (counts.corrupted) problems.push(`${counts.corrupted} connections got wrong bytes`)
    if (counts.otherErrors.length) problems.push(`other errors: ${counts.otherErrors.slice(0, 5).join(', ')}`)
    if (counts.completed !== counts.attempts) problems.push(`${counts.attempts - counts.completed} connections did not complete`)
    if (counts.bytesChecked === 0) problems.push('no bytes were checked')
    if (drained.length !== handoffs + 1) problems.push(`${drained.length} of ${handoffs + 1} processes reported draining`)
    for (const d of drained) if (d.sockets !== 0) problems.push(`generation ${d.generation} left ${d.sockets} socket(s) open`)
    for (const d of drained.slice(0, -1)) if (!(d.served > 0)) problems.push(`generation ${d.generation} served nothing`)
    if (all.some((l) => l.event === 'HANDOFF_FAILED' || l.event === 'ERROR')) problems.push('a handoff failed')
    if (fs.existsSync(socketPath)) problems.push('the offer path was left behind')
    if (stderr !== '') problems.push(`server stderr: ${stderr.slice(0, 500)}`)
    return { thread, handoffs, seconds, counts, served: drained.map((d) => d.served), drained, problems }
  } finally {
    if (load) await load.stop()
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  }
}

export function describe(r) {
  const c = r.counts
  return (
    `${r.thread ? 'thread' : 'no-thread'}: ${r.handoffs} handoffs in ${r.seconds.toFixed(1)} s, ` +
    `${c.attempts} connection attempts, ${c.completed} completed, ${c.refused} refused, ${c.reset} reset, ` +
    `${c.corrupted} corrupted, ${c.otherErrors.length} other errors, ${c.bytesChecked} bytes echoed and checked; ` +
    `connections served per generation: ${r.served.join(', ')}`
  )
}

async function main() {
  const arg = (name, def) => {
    const i = process.argv.indexOf(`--${name}`)
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def
  }
  const handoffs = Number(arg('handoffs', 5))
  const settleMs = Number(arg('settle', 1000))
  const which = arg('mode', 'both')
  const modes = which === 'both' ? [true, false] : [which !== 'no-thread']
  let failed = false
  for (const thread of modes) {
    const r = await handoffUnderLoad({ thread, handoffs, settleMs })
    console.log(`handoff ${describe(r)}: ${r.problems.length ? 'FAIL: ' + r.problems.join('; ') : 'PASS'}`)
    failed ||= r.problems.length > 0
  }
  process.exit(failed ? 1 : 0)
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
