// DNS peers for the forwarder tests: dnsmasq as an unprivileged-friendly upstream (no daemon, its
// own port, answers from --address only), and raw A queries and their answers.
import * as fs from 'node:fs'
import * as dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import { sockets } from 'reactor-socket'
import { Child } from './children.js'
import { waitUntil } from './waits.js'

const DNSMASQ_PATHS = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq']
export const DNSMASQ = DNSMASQ_PATHS.find((p) => fs.existsSync(p)) ?? null

/** An A query for `name` with id `id`. */
export function aQuery(id: number, name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)])
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(0x0100, 2) // recursion desired
  header.writeUInt16BE(1, 4) // one question
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])])
}

/** The id, rcode and first A record of an answer (null when it has none). */
export function parseAnswer(msg: Buffer): { id: number; rcode: number; address: string | null } {
  const id = msg.readUInt16BE(0)
  const rcode = msg.readUInt16BE(2) & 0xf
  const answers = msg.readUInt16BE(6)
  let at = 12
  while (msg[at] !== 0) at += msg[at] + 1 // the question's name
  at += 5
  let address: string | null = null
  for (let i = 0; i < answers && address === null; i++) {
    at += (msg[at] & 0xc0) === 0xc0 ? 2 : skipName(msg, at) - at
    const type = msg.readUInt16BE(at)
    const length = msg.readUInt16BE(at + 8)
    if (type === 1 && length === 4) address = [...msg.subarray(at + 10, at + 14)].join('.')
    at += 10 + length
  }
  return { id, rcode, address }
}

function skipName(msg: Buffer, at: number): number {
  while (msg[at] !== 0) {
    if ((msg[at] & 0xc0) === 0xc0) return at + 2
    at += msg[at] + 1
  }
  return at + 1
}

/** A port free on 127.0.0.1 now for both UDP and TCP (dnsmasq takes both). */
export function freeDnsPort(): number {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const port = (sockets.info(fd).local as { port: number }).port
  try {
    sockets.close(sockets.bindUdp({ host: '127.0.0.1', port }))
  } catch {
    return freeDnsPort() // UDP side taken: another
  } finally {
    sockets.close(fd)
  }
  return port
}

/** The dnsmasq processes started here and not yet stopped. */
const running = new Set<Child>()

/** Kills every dnsmasq `startDnsmasq` started (a file's teardown). */
export function killDnsmasqs() {
  for (const c of running) c.kill()
  running.clear()
}

/** Sends `query` to 127.0.0.1:`port` and resolves with the answer (bounded), or null. */
export function askOnce(port: number, query: Buffer, ms = 1000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    const timer = setTimeout(() => done(null), ms)
    const done = (m: Buffer | null) => {
      clearTimeout(timer)
      s.close()
      resolve(m)
    }
    s.on('message', (m) => done(m))
    s.send(query, port, '127.0.0.1')
  })
}

/** dnsmasq on 127.0.0.1 answering *.example.test with `address` and nothing else; resolves once it answers. */
export async function startDnsmasq(address: string, dir: string): Promise<{ child: Child; port: number }> {
  if (DNSMASQ === null) throw new Error('dnsmasq is not installed')
  let lastError = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freeDnsPort()
    const child = new Child(
      spawn(
        DNSMASQ,
        [
          '--no-daemon',
          `--port=${port}`,
          '--listen-address=127.0.0.1',
          '--bind-interfaces',
          '--no-resolv',
          '--no-hosts',
          '--conf-file=/dev/null',
          `--pid-file=${dir}/dnsmasq-${port}.pid`,
          `--address=/example.test/${address}`,
          '--log-facility=-',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    )
    running.add(child)
    try {
      await waitUntil(async () => {
        if (!child.alive) throw new Error(`dnsmasq exited: ${child.stderr}`)
        return (await askOnce(port, aQuery(1, 'probe.example.test'), 200)) !== null
      }, 'dnsmasq to answer')
      return { child, port }
    } catch (err) {
      lastError = (err as Error).message
      child.kill()
      running.delete(child)
    }
  }
  throw new Error(`dnsmasq did not start: ${lastError}`)
}
