// examples/dns-forwarder.js, run as a user would: a child process forwarding DNS over UDP to two
// dnsmasq upstreams in turn, with its receive buffer raised. Node's own resolver gets answers from
// both; 2,000 raw queries (200 in flight, from 10 sockets) are all answered; SIGTERM stops it after
// its sessions finished, with no kernel drop. Skipped with the reason where dnsmasq is missing.
// Both reactor modes.
import * as dns from 'node:dns'
import * as dgram from 'node:dgram'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { MODES, child, fileTeardown, waitUntil } from '../helpers.js'
import test, { type Implementation } from 'ava'
import { DNSMASQ, aQuery, killDnsmasqs, parseAnswer, startDnsmasq } from '../helpers/dns.js'

const { cleanups } = fileTeardown()
cleanups.push(killDnsmasqs)
const FORWARDER = path.join(process.cwd(), 'examples', 'dns-forwarder.js')
/** Serial (the load shares two cores), and skipped with the reason where dnsmasq is missing. */
const hasDnsmasq = (title: string, impl: Implementation<[]>) =>
  DNSMASQ !== null ? test.serial(title, impl) : test.skip(`${title} (skipped: dnsmasq not installed)`, impl)

/** `count` A queries from `sockets` sockets, `window` in flight per socket; resolves with the answers by id. */
async function queries(port: number, count: number, sockets: number, window: number): Promise<Map<number, string | null>> {
  const answers = new Map<number, string | null>()
  const perSocket = count / sockets
  await Promise.all(
    Array.from({ length: sockets }, async (_, k) => {
      const s = dgram.createSocket('udp4')
      cleanups.push(() => {
        try {
          s.close()
        } catch {}
      })
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
      let next = 0
      const first = k * perSocket
      const sendNext = () => {
        if (next < perSocket) {
          const id = first + next++
          s.send(aQuery(id, `host${id}.example.test`), port, '127.0.0.1')
        }
      }
      s.on('message', (m) => {
        const a = parseAnswer(m)
        answers.set(a.id, a.rcode === 0 ? a.address : `rcode ${a.rcode}`)
        sendNext()
      })
      for (let i = 0; i < window; i++) sendNext()
      await waitUntil(() => [...Array(perSocket).keys()].every((i) => answers.has(first + i)), () => `the answers of socket ${k} (${answers.size} of ${count} in all)`, 20000)
      s.close()
    }),
  )
  return answers
}

for (const mode of MODES) {
  hasDnsmasq(`[${mode.name}] examples/dns-forwarder.js forwards to two dnsmasq upstreams in turn, answers 2,000 queries, stops cleanly`, async (t) => {
    t.timeout(60000)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dns-forwarder-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const one = await startDnsmasq('192.0.2.1', dir)
    const two = await startDnsmasq('192.0.2.2', dir)
    t.teardown(() => {
      one.child.kill()
      two.child.kill()
    })
    const forwarder = child(FORWARDER, [
      '--upstream', `127.0.0.1:${one.port}`,
      '--upstream', `127.0.0.1:${two.port}`,
      '--recv-buffer', String(4 << 20),
      ...(mode.thread ? [] : ['--no-thread']),
    ])
    const listening = await forwarder.line('listening on')
    const m = /:(\d+), SO_RCVBUF (\d+)/.exec(listening)!
    const port = Number(m[1])
    t.true(Number(m[2]) >= 4 << 20, `SO_RCVBUF raised: ${m[2]}`)

    // Node's resolver: one socket, one query at a time; each answer ends its session, and the next
    // session goes to the other upstream.
    const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 3 })
    resolver.setServers([`127.0.0.1:${port}`])
    const seen = new Set<string>()
    for (let i = 0; i < 4; i++) for (const a of await resolver.resolve4(`www${i}.example.test`)) seen.add(a)
    t.deepEqual([...seen].sort(), ['192.0.2.1', '192.0.2.2'])

    const answers = await queries(port, 2000, 10, 20)
    t.is(answers.size, 2000)
    t.true([...answers.values()].every((a) => a === '192.0.2.1' || a === '192.0.2.2'), 'every answer is an A record from an upstream')

    forwarder.proc.kill('SIGTERM')
    const stopped = JSON.parse(await forwarder.line('stopped'))
    const result = await forwarder.wait()
    t.is(result.code, 0, result.stderr)
    t.true(stopped.datagramsFromClients >= 2004)
    t.is(stopped.datagramsToClients, stopped.datagramsFromClients, 'every query answered')
    t.is(stopped.kernelDrops, 0)
    t.is(stopped.datagramsDropped, 0)
    t.is(stopped.sessionsActive, 0)
    t.is(stopped.sessionsCompleted, stopped.sessionsCreated, 'every session ended with its answers (responses: 1)')
  })
}
