// Memory benchmarks: (a) a paused transport while the peer sends 1 GiB; (b) 10,000 idle connections;
// (c) 1,000 relayed pairs whose downstream does not read; (d) 100,000 UDP forwarder sessions.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { onLines } from './json-lines.mjs'
import { relayMemory } from './relay-memory.mjs'
import { udpSessions, udpSessionsRow } from './udp-sessions.mjs'

const GIB = 2 ** 30

function lines(child) {
  const waiting = []
  onLines(child, (line) => waiting.shift()?.resolve(line))
  return (ms = 120_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a line')), ms)
      waiting.push({ resolve: (l) => (clearTimeout(timer), resolve(l)) })
    })
}

function start(script, argv, fds = []) {
  const child = spawn(process.execPath, ['--expose-gc', script, ...argv], { stdio: ['pipe', 'pipe', 'inherit', ...fds] })
  return { child, next: lines(child) }
}

export async function runMemoryBenchmarks({ root, bytes = GIB, idle = 10_000 }) {
  const require = createRequire(path.join(root, 'package.json'))
  const { sockets } = require(root)
  const server = path.join(root, 'bench/servers/memory-server.js')
  const client = path.join(root, 'bench/servers/memory-client.js')
  const results = []
  const names = { thread: 'reactor (thread)', hosted: 'reactor (thread: false)', node: 'node net' }
  const idleRss = {}
  for (const mode of ['thread', 'hosted', 'node']) {
    // (a) paused transport
    {
      const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
      const port = sockets.info(fd).local.port
      const s = start(server, [mode, 'paused', '2000'], [fd])
      sockets.close(fd)
      await s.next()
      const c = start(client, ['blast', String(port), String(bytes)])
      const sent = JSON.parse(await c.next())
      const got = JSON.parse(await s.next())
      s.child.stdin.end()
      c.child.stdin.end()
      const intact = sent.sha256 === got.sha256 && sent.bytes === got.bytes
      const target = mode === 'node' ? '' : got.pausedGrowthMiB < 64 && intact ? '✓ (< 64 MiB, intact)' : '✗ (< 64 MiB, intact)'
      results.push({
        test: `paused transport, peer sends ${bytes / GIB} GiB`,
        server: names[mode],
        figure: `RSS +${got.pausedGrowthMiB.toFixed(1)} MiB while paused, +${got.peakGrowthMiB.toFixed(1)} MiB peak; ${intact ? 'every byte intact (sha256)' : 'BYTES DIFFER'}`,
        target,
      })
    }
    // (b) idle connections
    {
      const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 4096 })
      const port = sockets.info(fd).local.port
      const s = start(server, [mode, 'idle', String(idle)], [fd])
      sockets.close(fd)
      await s.next()
      const c = start(client, ['idle', String(port), String(idle)])
      await c.next()
      const got = JSON.parse(await s.next())
      idleRss[mode] = got.rssPerConnectionKiB
      c.child.stdin.end()
      s.child.stdin.end()
      results.push({ test: `${idle.toLocaleString('en-US')} idle connections`, server: names[mode], figure: `${got.rssPerConnectionKiB.toFixed(2)} KiB RSS per connection`, mode })
    }
  }
  for (const r of results) {
    if (!r.mode) continue
    const ratio = idleRss[r.mode] / idleRss.node
    r.ratio = ratio.toFixed(2)
    if (r.mode !== 'node') r.target = ratio <= 1 ? '✓ (≤ Node)' : '✗ (≤ Node)'
    delete r.mode
  }
  // (c) the native relay: 1,000 pairs whose downstream does not read (bench/relay-memory.mjs)
  for (const mode of ['thread', 'hosted']) results.push(await relayMemory({ root, mode }))
  // (d) the UDP forwarder: 100,000 sessions created and expired (bench/udp-sessions.mjs)
  for (const mode of ['thread', 'hosted']) results.push(udpSessionsRow(await udpSessions({ root, mode })))
  return results
}
