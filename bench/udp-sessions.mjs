// Memory benchmark for the UDP forwarder: 100,000 sessions created and expired, in waves of
// 10,000 live at once (each session holds a socket, and the machine's limit is 20,000 descriptors
// per process), through this package's forwarder to the Rust echo server. Reports the memory one
// live session costs the process (RSS with the first wave live over the RSS before it, after a
// GC), and what is left once all 100,000 have expired: descriptors (must be back where they
// started) and RSS after the first and after the last wave. The allocator and V8 keep some memory
// after a burst, up to a plateau (checked here: +7.5 MiB after 100,000 sessions and the same after
// 200,000); a leak would grow with every wave.
// The kernel's own memory for each socket (about 1–2 KiB of slab) is not in any process's RSS.
//
//   node bench/udp-sessions.mjs [thread|hosted] [--sessions 100000] [--wave 10000]
import { spawn } from 'node:child_process'
import * as dgram from 'node:dgram'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { jsonLines } from './json-lines.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Long enough for a whole wave to be live when it is measured (making 10,000 clients takes a
 *  second or two), short enough to run 10 waves in about a minute. */
const IDLE_MS = 4000

/** `n` clients, each its own socket (a session each: the sockets stay open for the whole wave, so
 *  no port is used twice), send one datagram each and wait for its echo, `window` at a time. */
async function wave(port, n, tag, window = 2000) {
  let answered = 0
  const socks = []
  for (let start = 0; start < n; start += window) {
    await Promise.all(
      Array.from({ length: Math.min(window, n - start) }, (_, k) => {
        const i = start + k
        return new Promise((resolve) => {
          const s = dgram.createSocket('udp4')
          socks.push(s)
          const msg = Buffer.from(`${tag}:${i}`)
          let tries = 0
          const send = () => (tries++ < 5 ? s.send(msg, port, '127.0.0.1') : done())
          const timer = setInterval(send, 500)
          const done = () => {
            clearInterval(timer)
            resolve()
          }
          s.on('message', () => {
            answered++
            done()
          })
          s.bind(0, '127.0.0.1', send)
        })
      }),
    )
  }
  for (const s of socks) s.close()
  return answered
}

export async function udpSessions({ root, mode, sessions = 100_000, waveSize = 10_000 }) {
  const require = createRequire(path.join(root, 'package.json'))
  const { sockets } = require(root)
  const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const upUdp = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
  const upstreamPort = sockets.info(upUdp).local.port
  const echo = spawn(path.join(root, 'target/release/echo-server'), ['--tcp-fd', '3', '--udp-fd', '4'], { stdio: ['ignore', 'ignore', 'ignore', tcp, upUdp] })
  sockets.close(tcp)
  sockets.close(upUdp)
  const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0, recvBufferSize: 8 << 20 })
  const port = sockets.info(fd).local.port
  const server = spawn(process.execPath, ['--expose-gc', path.join(root, 'bench/servers/udp-sessions-server.js'), mode, String(upstreamPort), String(IDLE_MS)], { stdio: ['pipe', 'pipe', 'inherit', fd] })
  sockets.close(fd)
  const answers = jsonLines(server, 'the UDP sessions server')
  const measure = () => answers.ask('m')
  try {
    await answers.ready()
    const base = await measure()
    const perSession = []
    const liveAtMeasure = []
    const afterWave = []
    let answered = 0
    let before = base
    for (let w = 0; w * waveSize < sessions; w++) {
      answered += await wave(port, Math.min(waveSize, sessions - w * waveSize), w)
      const live = await measure()
      liveAtMeasure.push(live.stats.sessionsActive)
      perSession.push((live.rss - before.rss) / live.stats.sessionsActive)
      // Wait for the wave to expire before the next (bounded).
      const deadline = Date.now() + 30_000
      while ((await measure()).stats.sessionsActive > 0 && Date.now() < deadline) await sleep(200)
      before = await measure()
      afterWave.push(before.rss / 2 ** 20)
    }
    const end = before
    return {
      mode,
      sessions: end.stats.sessionsCreated,
      expired: end.stats.sessionsExpired,
      answered,
      // The first wave, in a fresh process: (RSS with it live − RSS before) / sessions live. Later
      // waves reuse what the allocator kept from the first and show almost nothing.
      perSessionBytes: perSession[0],
      liveAtMeasure: liveAtMeasure[0],
      fdsBefore: base.fds,
      fdsAfter: end.fds,
      rssBeforeMiB: base.rss / 2 ** 20,
      rssAfterFirstWaveMiB: afterWave[0],
      rssAfterMiB: end.rss / 2 ** 20,
      dropped: end.stats.datagramsDropped + end.stats.kernelDrops + end.stats.upstreamKernelDrops,
    }
  } finally {
    server.stdin.end()
    echo.kill()
    await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', resolve)))
  }
}

/** The memory table's row for one mode. */
export function udpSessionsRow(r) {
  const name = r.mode === 'hosted' ? 'reactor listenDatagramProxy (thread: false)' : 'reactor listenDatagramProxy (thread)'
  const clean = r.fdsAfter === r.fdsBefore && r.expired === r.sessions
  return {
    test: `${r.sessions.toLocaleString('en-US')} UDP sessions created and expired (10,000 live at a time)`,
    server: name,
    figure: `${(r.perSessionBytes / 1024).toFixed(2)} KiB RSS per live session (first wave, ${r.liveAtMeasure.toLocaleString('en-US')} live); after all expired: ${r.fdsAfter} fds (${r.fdsBefore} before); RSS ${r.rssBeforeMiB.toFixed(1)} MiB before, ${r.rssAfterFirstWaveMiB.toFixed(1)} after the first wave expired, ${r.rssAfterMiB.toFixed(1)} after the last; ${r.answered.toLocaleString('en-US')} answered`,
    target: clean ? '✓ (no fd left, every session expired)' : '✗ (no fd left, every session expired)',
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
  const argv = process.argv.slice(2)
  const opt = (name, fallback) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback)
  for (const mode of argv.filter((a) => a === 'thread' || a === 'hosted').length ? argv.filter((a) => a === 'thread' || a === 'hosted') : ['thread', 'hosted']) {
    const r = await udpSessions({ root, mode, sessions: opt('--sessions', 100_000), waveSize: opt('--wave', 10_000) })
    console.log(JSON.stringify(r))
    console.log(udpSessionsRow(r))
  }
}
