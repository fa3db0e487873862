// Restart with no loss: a UDP forwarder process hands its listening socket to a successor
// (handoff.offer / handoff.take, __test__/fixtures/datagram-proxy-handoff.mjs) while clients keep
// sending. The old process stops reading and its sessions end by idle timeout (their replies still
// leave through the socket); the new one serves from then on. The clients count every answer:
// none may be missing. Both reactor modes, one after the other (the load shares two cores).
import test from 'ava'
import * as dgram from 'node:dgram'
import * as os from 'node:os'
import * as path from 'node:path'
import * as fs from 'node:fs'
import { MODES, child, fixture, fileTeardown, waitUntil } from '../helpers.js'

const { cleanups } = fileTeardown()
const CLIENTS = 8
/** Each client sends one datagram per tick. */
const TICK_MS = 2

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 })
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  cleanups.push(() => {
    try {
      s.close()
    } catch {}
  })
  return s
}

for (const mode of MODES) {
  test.serial(`[${mode.name}] a handoff under load loses no datagram: the old sessions finish, the new process serves`, async (t) => {
    t.timeout(60000)
    const upstream = await udp()
    upstream.on('message', (m, r) => upstream.send(m, r.port, r.address))
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'udp-handoff-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const offerPath = path.join(dir, 'offer.sock')
    const args = (role: string) => [role, mode.thread ? 'thread' : 'hosted', String(upstream.address().port), offerPath]
    const old = child(fixture('datagram-proxy-handoff.mjs'), args('old'))
    const port = Number(await old.line('READY'))

    const sent = new Set<string>()
    const answered = new Set<string>()
    let duplicates = 0
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => udp()))
    for (const c of clients) {
      c.on('message', (m) => {
        const id = m.toString()
        if (answered.has(id)) duplicates++
        answered.add(id)
      })
    }
    let seq = 0
    const load = setInterval(() => {
      for (const [i, c] of clients.entries()) {
        const id = `${i}:${seq}`
        sent.add(id)
        c.send(id, port, '127.0.0.1')
      }
      seq++
    }, TICK_MS)
    try {
      await waitUntil(() => answered.size > 200, 'traffic through the old process')
      const successor = child(fixture('datagram-proxy-handoff.mjs'), args('new'))
      await successor.line('SERVING', 20000)
      const oldStats = JSON.parse(await old.line('STOPPED', 20000))
      const atStop = answered.size
      await waitUntil(() => answered.size > atStop + 200, 'traffic through the new process', 20000)
      clearInterval(load)
      await waitUntil(() => answered.size >= sent.size, () => `every answer (${answered.size} of ${sent.size})`, 10000).catch(() => {})
      successor.proc.stdin!.end()
      const newStats = JSON.parse(await successor.line('STATS'))
      const missing = [...sent].filter((id) => !answered.has(id))
      t.log(`${sent.size} sent; old forwarded ${oldStats.datagramsFromClients}, new ${newStats.datagramsFromClients}; old sessions expired ${oldStats.sessionsExpired}`)
      t.deepEqual(missing.slice(0, 20), [], `${missing.length} datagrams missing`)
      t.is(duplicates, 0)
      t.true(oldStats.datagramsFromClients > 0 && newStats.datagramsFromClients > 0, 'both processes forwarded')
      t.is(oldStats.datagramsFromClients + newStats.datagramsFromClients, sent.size, 'every datagram forwarded once')
      t.is(oldStats.sessionsActive, 0)
      t.is(oldStats.sessionsExpired, oldStats.sessionsCreated, 'the old sessions ended by their idle timeout')
      t.is(oldStats.kernelDrops + newStats.kernelDrops + oldStats.datagramsDropped + newStats.datagramsDropped, 0)
      t.is((await old.wait()).code, 0)
      t.is((await successor.wait()).code, 0)
    } finally {
      clearInterval(load)
    }
  })
}
