// The proxy phase of `npm run soak`: clients through examples/proxy.js (an adopted listening socket,
// connectTCP upstream per client, the native relay) to a Node echo server, for a while, with some
// clients resetting on purpose. Every byte of every clean connection is checked by hash; the proxy's
// descriptors are counted after warm-up and at the end (0 leaked); SIGTERM must stop it cleanly.
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { spawn } from 'node:child_process'

const PROXY = path.join(import.meta.dirname, '..', 'examples', 'proxy.js')
const fdCount = (pid) => {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return -1 // the process is gone (reported by its exit)
  }
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function oneClient(port, resetOnPurpose) {
  return new Promise((resolve) => {
    const size = 1 + crypto.randomInt(512 * 1024)
    const payload = crypto.randomBytes(size)
    const want = crypto.createHash('sha256').update(payload).digest('hex')
    const got = crypto.createHash('sha256')
    let received = 0
    const c = net.connect(port, '127.0.0.1', () => {
      if (resetOnPurpose) {
        c.write(payload.subarray(0, size >> 1), () => c.resetAndDestroy())
      } else c.end(payload)
    })
    c.on('data', (d) => {
      received += d.length
      got.update(d)
    })
    c.on('error', () => {})
    c.on('close', () => {
      if (resetOnPurpose) return resolve({ kind: 'reset', bytes: received })
      const ok = received === size && got.digest('hex') === want
      resolve({ kind: ok ? 'ok' : 'corrupt', bytes: received })
    })
  })
}

/** Runs the proxy (`thread` or not) under `clients` concurrent clients for `seconds`. */
export async function proxyUnderLoad({ thread, seconds = 20, clients = 16 }) {
  const upstream = net.createServer((s) => {
    s.on('error', () => {})
    s.pipe(s)
  })
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const args = [PROXY, '--upstream', `127.0.0.1:${upstream.address().port}`, ...(thread ? [] : ['--no-thread'])]
  const proxy = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let errors = ''
  proxy.stdout.on('data', (d) => (out += d))
  proxy.stderr.on('data', (d) => (errors += d))
  const exited = new Promise((resolve) => proxy.once('close', (code, signal) => resolve({ code, signal })))
  while (!/listening on .*:(\d+)/.test(out)) await sleep(20)
  const port = Number(/listening on .*:(\d+)/.exec(out)[1])
  const counts = { ok: 0, reset: 0, corrupt: 0, bytes: 0 }
  let fdsAfterWarmup = null
  const started = Date.now()
  const deadline = started + seconds * 1000
  async function worker() {
    while (Date.now() < deadline) {
      const r = await oneClient(port, Math.random() < 0.1)
      counts[r.kind]++
      counts.bytes += r.bytes
      if (fdsAfterWarmup === null && Date.now() - started > 2000) fdsAfterWarmup = fdCount(proxy.pid)
    }
  }
  await Promise.all(Array.from({ length: clients }, worker))
  // Every client is closed: the proxy's relays end; then its descriptors are back to the warm-up count.
  let fdsAtEnd = fdCount(proxy.pid)
  for (let i = 0; i < 100 && fdsAtEnd > fdsAfterWarmup; i++) {
    await sleep(50)
    fdsAtEnd = fdCount(proxy.pid)
  }
  proxy.kill('SIGTERM')
  const exit = await exited
  upstream.close()
  const problems = []
  if (counts.corrupt > 0) problems.push(`${counts.corrupt} connections corrupted or short`)
  if (fdsAfterWarmup !== null && fdsAtEnd > fdsAfterWarmup) problems.push(`${fdsAtEnd - fdsAfterWarmup} fds leaked`)
  if (exit.code !== 0) problems.push(`proxy exit ${exit.code ?? exit.signal}: ${errors.slice(-500)}`)
  return { thread, seconds, clients, counts, fdsAfterWarmup, fdsAtEnd, exit, problems }
}

export function describe(r) {
  const c = r.counts
  return `proxy [${r.thread ? 'thread' : 'no-thread'}] ${r.seconds} s: ${c.ok} connections checked by hash (${(c.bytes / 2 ** 20).toFixed(0)} MiB), ${c.reset} reset on purpose, ${c.corrupt} corrupted, fds ${r.fdsAfterWarmup} after warm-up / ${r.fdsAtEnd} at the end`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Number(process.argv[2] ?? 10)
  let failed = false
  for (const thread of [true, false]) {
    const r = await proxyUnderLoad({ thread, seconds })
    console.log(`${describe(r)}: ${r.problems.length ? 'FAIL: ' + r.problems.join('; ') : 'PASS'}`)
    failed ||= r.problems.length > 0
  }
  process.exit(failed ? 1 : 0)
}
