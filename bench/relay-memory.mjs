// Memory benchmark for the native relay: 1,000 relayed pairs whose downstream never reads while
// upstream sends. The proxy's RSS growth must stay within 1,000 × 2 × bufferSize + 32 MiB, and every
// byte must arrive, checked, once the downstream reads.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import * as net from 'node:net'
import * as path from 'node:path'
import { jsonLines } from './json-lines.mjs'

const BUFFER_SIZE = 262_144 // the relay's default
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** The byte at position i of every upstream stream: checks order and integrity without storing it. */
const patternByte = (i) => (i * 31 + (i >> 11)) & 0xff

function pattern(from, length) {
  const b = Buffer.allocUnsafe(length)
  for (let k = 0; k < length; k++) b[k] = patternByte(from + k)
  return b
}

export async function relayMemory({ root, mode, pairs = 1000, perPair = 2 * 2 ** 20 }) {
  const require = createRequire(path.join(root, 'package.json'))
  const { sockets } = require(root)
  // Upstream: sends perPair bytes of the pattern on every connection, as fast as it is taken.
  let upstreamWritten = 0
  const upstream = net.createServer((s) => {
    s.on('error', () => {})
    let sent = 0
    const pump = () => {
      while (sent < perPair) {
        const n = Math.min(64 * 1024, perPair - sent)
        const ok = s.write(pattern(sent, n), () => (upstreamWritten += n))
        sent += n
        if (!ok) return s.once('drain', pump)
      }
      s.end()
    }
    pump()
  })
  await new Promise((resolve) => upstream.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve))
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 4096 })
  const port = sockets.info(fd).local.port
  const server = spawn(process.execPath, ['--expose-gc', path.join(root, 'bench/servers/relay-memory-server.js'), mode, String(upstream.address().port)], {
    stdio: ['pipe', 'pipe', 'inherit', fd],
  })
  sockets.close(fd)
  const answers = jsonLines(server, 'the relay memory server')
  const nextLine = () => answers.ask('rss')
  await answers.ready()
  const base = (await nextLine()).rssMiB
  // Downstream clients that do not read.
  const clients = []
  for (let i = 0; i < pairs; i++) {
    const c = net.connect(port, '127.0.0.1')
    c.pause()
    c.on('error', () => {})
    clients.push(c)
    if (i % 100 === 99) await sleep(20)
  }
  // Wait until the upstream's writes stall (everything that can be buffered is buffered).
  let last = -1
  for (let stable = 0; stable < 5; ) {
    await sleep(200)
    stable = upstreamWritten === last ? stable + 1 : 0
    last = upstreamWritten
  }
  const loaded = await nextLine()
  const growth = loaded.rssMiB - base
  const bound = (pairs * 2 * BUFFER_SIZE) / 2 ** 20 + 32
  // Now read everything and check it.
  let bad = 0
  let total = 0
  await Promise.all(
    clients.map(
      (c) =>
        new Promise((resolve) => {
          let at = 0
          c.on('data', (d) => {
            for (let k = 0; k < d.length; k += 4099) if (d[k] !== patternByte(at + k)) bad++
            at += d.length
          })
          c.on('close', () => {
            total += at
            if (at !== perPair) bad++
            resolve()
          })
          c.resume()
        }),
    ),
  )
  server.stdin.end()
  await new Promise((resolve) => server.once('close', resolve))
  upstream.close()
  return {
    test: `${pairs.toLocaleString('en-US')} relayed pairs, downstream not reading, ${perPair / 2 ** 20} MiB each`,
    server: mode === 'hosted' ? 'reactor relay (thread: false)' : 'reactor relay (thread)',
    figure: `RSS +${growth.toFixed(1)} MiB while stalled (${loaded.relays} relays); ${(total / 2 ** 30).toFixed(2)} GiB delivered, ${bad === 0 ? 'every byte checked' : `${bad} BAD`}`,
    target: growth <= bound && bad === 0 ? `✓ (≤ ${bound.toFixed(0)} MiB, intact)` : `✗ (≤ ${bound.toFixed(0)} MiB, intact)`,
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = path.join(import.meta.dirname, '..')
  for (const mode of ['thread', 'hosted']) console.log(await relayMemory({ root, mode }))
}
