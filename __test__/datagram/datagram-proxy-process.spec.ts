// The datagram proxy in a process of its own: out of descriptors (a low RLIMIT_NOFILE), new
// clients are refused and counted while the sessions already open go on being served, and the
// process neither crashes nor stalls; an unref'd port lets the process exit. Both reactor modes.
import test from 'ava'
import { spawn } from 'node:child_process'
import { MODES, Child, child, fixture, fileTeardown, waitUntil } from '../helpers.js'
import { UdpClient, UdpUpstream } from '../helpers/datagram-proxy.js'

const { cleanups } = fileTeardown()
const FIXTURE = fixture('datagram-proxy-child.mjs')

for (const mode of MODES) {
  const m = mode.thread ? 'thread' : 'hosted'

  test.serial(`[${mode.name}] out of descriptors: new clients are refused and counted, the sessions open are still served`, async (t) => {
    t.timeout(60000)
    const up = await UdpUpstream.start()
    cleanups.push(() => up.close())
    // A descriptor limit a little above what the process needs to start: a few sessions fit.
    const proc = new Child(spawn('sh', ['-c', `ulimit -n 48 && exec "${process.execPath}" "${FIXTURE}" ${m} ${up.port} serve`], { stdio: ['pipe', 'pipe', 'pipe'] }))
    cleanups.push(() => proc.kill())
    const port = Number(await proc.line('READY'))
    const clients = await Promise.all(Array.from({ length: 40 }, () => UdpClient.start()))
    cleanups.push(() => clients.forEach((c) => c.close()))
    let stats: any = null
    let seen = 0
    const ask = async () => {
      proc.send('stats\n')
      await waitUntil(() => proc.stdout.split('\n').filter((l) => l.startsWith('STATS')).length > seen, 'the stats line')
      seen++
      stats = JSON.parse(proc.stdout.split('\n').filter((l) => l.startsWith('STATS'))[seen - 1].slice(6))
      return stats
    }
    for (const [i, c] of clients.entries()) c.send(`c${i}`, port)
    await waitUntil(async () => {
      const s = await ask()
      return s.sessionsCreated + s.refusedNoSourcePort === 40
    }, () => `every client served or refused (${JSON.stringify(stats)})`)
    t.log(`${stats.sessionsCreated} sessions, ${stats.refusedNoSourcePort} refused`)
    t.true(stats.sessionsCreated > 0, 'some sessions got a descriptor')
    t.true(stats.refusedNoSourcePort > 0, 'the others were refused and counted')
    // The sessions open are still served, twice over.
    // A session counted may still have its answer on the way: wait for it (bounded).
    await waitUntil(() => clients.filter((c) => c.answers.length > 0).length >= stats.sessionsCreated, 'every session\'s answer')
    const served = clients.filter((c) => c.answers.length > 0)
    t.is(served.length, stats.sessionsCreated)
    for (const c of served) await c.ask(`again ${c.port}`, port)
    t.true(proc.alive, 'no crash')
    proc.proc.stdin!.end()
    const result = await proc.wait()
    t.is(result.code, 0, result.stderr)
  })

  test.serial(`[${mode.name}] an unref'd datagram proxy lets the process exit; a ref'd one holds it`, async (t) => {
    const up = await UdpUpstream.start()
    cleanups.push(() => up.close())
    const unrefd = child(FIXTURE, [m, String(up.port), 'unref'])
    await unrefd.line('UNREFD')
    t.is((await unrefd.wait()).code, 0)
    const held = child(FIXTURE, [m, String(up.port), 'serve'])
    await held.line('READY')
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.true(held.alive, 'a ref\'d port holds the process')
    held.proc.stdin!.end()
    t.is((await held.wait()).code, 0)
  })
}
