// Faults: slow consumers. A separate process (fixtures/faults-sender.mjs, so its memory is not
// counted here) sends 256 MiB as fast as it can to an adopted port. The protocol first pauses its
// transport: the sender is pushed back by the kernel (it stalls after a bounded amount), our memory
// stays flat, nothing is delivered while paused. Then it resumes with a slow dataReceived
// (busy-waits, ~150 MB/s, far below what the sender could do) and pauses again for a moment every
// 32 MiB: memory stays bounded, timers keep running (the event loop is never blocked for long), and
// every byte arrives, in order (SHA-256 of the whole stream).
// Both reactor modes. Serial (each test measures this process's RSS).
import test from 'ava'
import { AddressFamily, ConnectionDone } from 'reactor-socket'
import {
  MODES,
  listenTcp4,
  closeFd,
  within,
  waitUntil,
  fixture,
  child,
  Child,
  plainRecFactory,
  exactlyOnce,
  rss,
  rssSampler,
  MiB,
  spin,
  className,
  type Mode,
  reactorHarness,
  waitStable,
  fileTeardown,
} from '../helpers.js'

const TOTAL = 256 * MiB
/** How far the sender may get while we are paused: socket buffers (tcp_rmem max here is 32 MiB,
 *  tcp_wmem 4 MiB) plus the core's one batch (1 MiB). */
const PAUSED_SEND_LIMIT = 64 * MiB
/** Growth of this process's RSS allowed while 256 MiB stream through it. */
const RSS_LIMIT = 96 * MiB

fileTeardown()

/** The longest time between two ticks of a 10 ms interval: how long the event loop was blocked. */
function loopGap() {
  let last = Date.now()
  let max = 0
  const timer = setInterval(() => {
    const now = Date.now()
    max = Math.max(max, now - last)
    last = now
  }, 10)
  return {
    stop() {
      clearInterval(timer)
      return Math.max(max, Date.now() - last)
    },
  }
}

function lastSent(c: Child): number {
  const m = c.stdout.match(/SENT (\d+)\n(?![\s\S]*SENT )/)
  return m ? Number(m[1]) : 0
}

async function setup(t: any, mode: Mode, onMade: (p: any) => void, onData?: (p: any, d: Buffer) => void) {
  const h = reactorHarness(t, mode)
  const lfd = listenTcp4()
  const f = plainRecFactory((p) => {
    p.keepChunks = false
    p.onMade = onMade
    if (onData) p.onData = onData
  })
  const port = h.r.adoptStreamPort(lfd, AddressFamily.INET, f)
  closeFd(lfd)
  return { ...h, f, port, portNumber: (port.getHost() as any).port as number }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test.serial(`${tag} paused, then slow: the kernel pushes back, memory bounded, timers keep running; all 256 MiB arrive in order`, async (t) => {
    const RATE = 150 * MiB // bytes per second the slow protocol takes (the sender could go much faster)
    const s = await setup(t, mode, (p) => p.t.pauseProducing())
    const base = rss()
    const sampler = rssSampler()
    const c = child(fixture('faults-sender.mjs'), [String(s.portNumber), String(TOTAL)])
    t.teardown(() => c.kill())
    await waitUntil(() => s.f.built.length === 1, 'the connection', 10000)
    const p = s.f.built[0]

    // 1. Paused while the peer keeps sending: the sender stalls after a bounded amount.
    //    No event says "stalled": the count it reports stops growing. 0 when it never stalls.
    const stalledAt = await waitStable(() => lastSent(c), 'the sender to stall', {
      period: 250,
      ms: 8000,
      accept: (sent) => sent > 0,
    }).catch(() => 0)
    const pausedGrowth = sampler.max - base
    t.log(`while paused: sender stalled at ${(stalledAt / MiB).toFixed(1)} MiB; RSS +${(pausedGrowth / MiB).toFixed(1)} MiB`)
    t.true(stalledAt > 0, 'the sender stalled (the kernel pushes back)')
    t.true(stalledAt < PAUSED_SEND_LIMIT, `the sender stalled after a bounded amount (${stalledAt})`)
    t.is(p.bytes, 0, 'nothing delivered while paused')
    t.true(pausedGrowth < 32 * MiB, `memory flat while paused (+${(pausedGrowth / MiB).toFixed(1)} MiB)`)

    // 2. Resumed with a slow dataReceived (busy-waits to ~150 MB/s), pausing again for a moment
    //    every 32 MiB; the event loop must keep turning meanwhile.
    let calls = 0
    let nextPause = 32 * MiB
    let pauses = 0
    p.onData = (_p: any, d: Buffer) => {
      calls++
      sampler.sample()
      spin((d.length / RATE) * 1e6)
      if (p.bytes >= nextPause) {
        nextPause += 32 * MiB
        pauses++
        p.t.pauseProducing()
        setTimeout(() => p.t.resumeProducing(), 10)
      }
    }
    const gap = loopGap()
    const t0 = Date.now()
    p.t.resumeProducing()
    const reason = await within(p.waitLost(40000), 'the whole stream', 40000)
    const secs = (Date.now() - t0) / 1000
    const [sent, digest] = (await c.line('DONE ')).split(' ')
    const growth = sampler.stop() - base
    const maxGap = gap.stop()
    t.log(
      `${(p.bytes / MiB).toFixed(0)} MiB in ${secs.toFixed(1)} s over ${calls} calls, ${pauses} pauses; ` +
        `RSS max +${(growth / MiB).toFixed(1)} MiB; longest event-loop stall ${maxGap} ms`,
    )
    t.true(reason instanceof ConnectionDone, className(reason))
    t.is(p.bytes, Number(sent), 'every byte arrived')
    t.true(p.bytes >= TOTAL)
    t.is(p.hash.digest('hex'), digest, 'in order, none corrupted (SHA-256)')
    t.true(growth < RSS_LIMIT, `memory bounded (+${(growth / MiB).toFixed(1)} MiB)`)
    // Other work (timers, other sockets) must not starve while one connection floods.
    t.true(maxGap < 500, `the event loop keeps turning during the flood (longest stall ${maxGap} ms)`)
    await exactlyOnce(t, p)
    await within(c.exited, 'sender exit')
    await s.finish()
  })
}
