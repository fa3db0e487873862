// examples/handoff/server.js started under a loader (`node --import tsx`, as `tsx server.js`
// does): its successor must run the same script under the same node options, or a server that
// needs the loader could not start its successor. One handoff, then the last process stops.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { Child, tmpSockPath, waitUntil, nodeClient } from '../helpers.js'
// @ts-expect-error: a plain ES module without types
import { isAlive } from '../../scripts/handoff-soak.mjs'

const EXAMPLE = path.join(process.cwd(), 'examples', 'handoff', 'server.js')
const pids = new Set<number>()
let server: Child | null = null
test.after.always(() => {
  server?.kill()
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
})

type Line = { event: string; pid: number; generation: number; [field: string]: any }
const lines = (c: Child): Line[] =>
  c.stdout
    .split('\n')
    .filter((l) => /^[A-Z_]+ \{/.test(l))
    .map((l) => ({ event: l.slice(0, l.indexOf(' ')), ...JSON.parse(l.slice(l.indexOf(' ') + 1)) }))

test('under `node --import tsx`, the successor runs with the same node options and script, takes the socket and serves', async (t) => {
  const socketPath = tmpSockPath('handoff-example')
  const c = new Child(spawn(process.execPath, ['--import', 'tsx', EXAMPLE, '--port', '0', '--path', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] }))
  server = c
  const find = (event: string, generation: number) => lines(c).find((l) => l.event === event && l.generation === generation)
  await waitUntil(() => find('READY', 1) !== undefined, () => `the first server (${c.stdout}${c.stderr})`, 15000)
  const first = find('READY', 1)!
  pids.add(first.pid)
  process.kill(first.pid, 'SIGHUP')
  await waitUntil(() => find('READY', 2) !== undefined || find('HANDOFF_FAILED', 1) !== undefined, () => `the successor (${c.stdout}${c.stderr})`, 15000)
  const second = find('READY', 2)
  t.truthy(second, `the successor started: ${c.stdout}${c.stderr}`)
  pids.add(second!.pid)
  t.like(second, { took: true, port: first.port })
  const argv = fs.readFileSync(`/proc/${second!.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
  t.deepEqual(argv.slice(1, 4), ['--import', 'tsx', EXAMPLE], 'node options, then the same script')
  await waitUntil(() => find('DRAINED', 1) !== undefined, 'the first server to drain', 10000)
  const peer = await nodeClient(first.port)
  peer.sock.write('still served')
  await peer.waitText('still served')
  peer.destroy()
  process.kill(second!.pid, 'SIGTERM')
  await waitUntil(() => find('DRAINED', 2) !== undefined, 'the successor to stop', 10000)
  const exit = await c.wait()
  t.is(exit.code, 0, exit.stderr)
  t.is(exit.stderr, '')
})
