// More than one process serving one port: N workers adopting the same inherited listening socket
// (one accept queue, shared), and N workers with their own SO_REUSEPORT sockets (one queue each,
// the kernel spreads connections by hash). Both reactor modes.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as net from 'node:net'
import { Child, MODES, fixture, listenTcp4, portOf, closeFd, closeTracked, waitUntil, within, limiter } from '../helpers.js'

const WORKERS = 3
const slot = limiter(2)
const kids: Child[] = []
test.after.always(() => {
  for (const k of kids) k.kill()
  closeTracked()
})

function worker(mode: string, args: string[], inherit?: number): Child {
  const stdio: any[] = ['pipe', 'pipe', 'pipe']
  if (inherit !== undefined) stdio.push(inherit)
  const c = new Child(spawn(process.execPath, [fixture('shared-worker.mjs'), mode, ...args], { stdio }))
  kids.push(c)
  return c
}

interface Tally {
  attempts: number
  ok: number
  refused: number
  reset: number
  other: string[]
  byPid: Map<number, number>
}

const newTally = (): Tally => ({ attempts: 0, ok: 0, refused: 0, reset: 0, other: [], byPid: new Map() })

/** One connection: read the worker's pid line, check an echo, close. */
function visit(port: number, tally: Tally): Promise<void> {
  tally.attempts++
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let text = ''
    let failed = false
    const payload = `hello ${tally.attempts}`
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(payload))
    sock.on('data', (d: string) => {
      text += d
      const newline = text.indexOf('\n')
      if (newline >= 0 && text.slice(newline + 1) === payload) {
        const pid = Number(text.slice(0, newline))
        tally.byPid.set(pid, (tally.byPid.get(pid) ?? 0) + 1)
        tally.ok++
        sock.end()
      }
    })
    sock.on('error', (err: NodeJS.ErrnoException) => {
      failed = true
      if (err.code === 'ECONNREFUSED') tally.refused++
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') tally.reset++
      else tally.other.push(String(err.code))
    })
    sock.on('close', () => {
      if (!failed && !text.endsWith(payload)) tally.other.push('closed early')
      resolve()
    })
  })
}

/** Connection loops (8 at once) until `until()` holds. */
async function load(port: number, tally: Tally, until: () => boolean, what: string, ms = 15000) {
  const deadline = Date.now() + ms
  const loop = async () => {
    while (!until() && Date.now() < deadline) await visit(port, tally)
  }
  await Promise.all(Array.from({ length: 8 }, loop))
  if (!until()) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${JSON.stringify({ ...tally, byPid: [...tally.byPid] })}`)
}

async function readyPid(c: Child): Promise<number> {
  return JSON.parse(await c.line('READY ')).pid
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test(`${tag} ${WORKERS} workers adopting one inherited listening socket: connections reach every worker; none refused or reset while one stops`, (t) => slot(async () => {
    const listener = listenTcp4()
    const port = portOf(listener)
    const workers = Array.from({ length: WORKERS }, () => worker(mode.name, ['inherit'], listener))
    const pids = await Promise.all(workers.map(readyPid))
    closeFd(listener) // only the workers hold the socket now
    const tally = newTally()
    await load(port, tally, () => pids.every((pid) => tally.byPid.has(pid)), 'every worker to serve a connection')
    // Stop one worker while connections keep coming: the others keep accepting from the same
    // queue, so nothing waiting in it is lost.
    const [stopping, ...others] = workers
    const okBefore = tally.ok
    let stopped = false
    const stop = (async () => {
      stopping.send('stop\n')
      await stopping.line('STOPPED ')
      const exit = await stopping.wait()
      t.is(exit.code, 0, exit.stderr)
      stopped = true
    })()
    await load(port, tally, () => stopped && tally.ok >= okBefore + 200, 'the worker to stop under load')
    await stop
    const afterStop = newTally()
    await load(port, afterStop, () => afterStop.ok >= 100, 'traffic after the stop')
    t.false(afterStop.byPid.has(pids[0]), 'the stopped worker serves nothing')
    t.log(`${tag} shared socket: ${tally.attempts + afterStop.attempts} attempts, ${tally.refused + afterStop.refused} refused, ` +
      `${tally.reset + afterStop.reset} reset; per worker: ${[...tally.byPid.values()].join(', ')}`)
    for (const x of [tally, afterStop]) {
      t.is(x.refused, 0)
      t.is(x.reset, 0)
      t.deepEqual(x.other, [])
      t.is(x.ok, x.attempts)
    }
    for (const w of others) w.send('stop\n')
    for (const w of others) t.is((await w.wait()).code, 0)
  }))

  test(`${tag} ${WORKERS} workers with their own SO_REUSEPORT sockets (sockets.listenTcp({ reusePort })) on one port: connections reach every worker`, (t) => slot(async () => {
    const first = worker(mode.name, ['reuseport', '0'])
    const { pid: firstPid, port } = JSON.parse(await first.line('READY '))
    const rest = Array.from({ length: WORKERS - 1 }, () => worker(mode.name, ['reuseport', String(port)]))
    const pids = [firstPid, ...(await Promise.all(rest.map(readyPid)))]
    const tally = newTally()
    await load(port, tally, () => pids.every((pid) => tally.byPid.has(pid)) && tally.ok >= 60, 'every worker to serve a connection')
    t.log(`${tag} SO_REUSEPORT: per worker ${[...tally.byPid.values()].join(', ')}`)
    t.is(tally.refused, 0)
    t.deepEqual(tally.other, [])
    for (const w of [first, ...rest]) w.send('stop\n')
    for (const w of [first, ...rest]) t.is((await within(w.wait(), 'worker exit')).code, 0)
  }))
}
