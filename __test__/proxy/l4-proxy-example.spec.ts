// examples/l4-proxy.js run as a user would: a child process proxying to an upstream that reads
// the PROXY v2 header it sends; replaced on SIGHUP under load with nothing refused and no byte lost;
// socket-activated by systemd-socket-activate. Both reactor modes.
import test from 'ava'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawn } from 'node:child_process'
import { MODES, Child, child, fileTeardown, hasCommand, testIf, within, waitUntil } from '../helpers.js'

const { cleanups } = fileTeardown()
const EXAMPLE = path.join(process.cwd(), 'examples', 'l4-proxy.js')

/** An upstream that reads each connection's PROXY v2 header, answers "from <port>\n" (the client
 *  port the header names), then echoes. */
async function headerEchoUpstream(): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => {})
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (buf.length < 16) return
      const total = 16 + buf.readUInt16BE(14)
      if (buf.length < total) return
      s.off('data', onData)
      const sourcePort = buf[13] === 0x11 ? buf.readUInt16BE(24) : -1
      s.write(`from ${sourcePort}\n`)
      s.write(buf.subarray(total))
      s.pipe(s)
    }
    s.on('data', onData)
  })
  cleanups.push(() => server.close())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as net.AddressInfo).port
}

/** One exchange through the proxy: the header line, then `payload` echoed back. */
function exchange(port: number, payload: Buffer): Promise<{ header: string; body: Buffer; localPort: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const c = net.connect(port, '127.0.0.1', () => c.end(payload))
    c.on('data', (d) => chunks.push(d))
    c.on('end', () => {
      const all = Buffer.concat(chunks)
      const nl = all.indexOf('\n')
      resolve({ header: all.subarray(0, nl).toString(), body: all.subarray(nl + 1), localPort: c.localPort ?? -1 })
    })
    c.on('error', reject)
  })
}

function privateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l4-proxy-test-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

for (const mode of MODES) {
  test(`[${mode.name}] examples/l4-proxy.js: the upstream gets the client's address first; SIGHUP replaces it under load with nothing refused or lost`, async (t) => {
    const upstream = await headerEchoUpstream()
    const dir = privateDir()
    const args = ['--upstream', `127.0.0.1:${upstream}`, '--listen', '127.0.0.1:0', '--path', path.join(dir, 'handoff.sock'), ...(mode.thread ? [] : ['--no-thread'])]
    const first = child(EXAMPLE, args)
    const ready = JSON.parse(await first.line('READY '))
    t.is(ready.source, 'own')
    const port = ready.port
    const one = await within(exchange(port, Buffer.from('hello')), 'one exchange')
    t.is(one.header, `from ${one.localPort}`, 'the PROXY v2 header names the client')
    t.is(one.body.toString(), 'hello')

    let stop = false
    let exchanges = 0
    const failures: string[] = []
    const loop = async () => {
      while (!stop) {
        const payload = crypto.randomBytes(1 + crypto.randomInt(16 * 1024))
        try {
          const r = await exchange(port, payload)
          if (!r.body.equals(payload) || r.header !== `from ${r.localPort}`) failures.push('corrupt')
        } catch (e: any) {
          failures.push(e.code ?? String(e))
        }
        exchanges++
      }
    }
    const loops = Array.from({ length: 6 }, loop)
    await waitUntil(() => exchanges >= 30, 'traffic before the handoff')
    first.proc.kill('SIGHUP')
    const handoff = JSON.parse(await first.line('HANDOFF '))
    const drained = JSON.parse(await first.line('DRAINED ', 40_000))
    await waitUntil(() => exchanges >= 120, 'traffic after the handoff', 30_000)
    stop = true
    await Promise.all(loops)
    t.deepEqual(failures, [], `every exchange complete (${exchanges})`)
    t.is(drained.closedAtDeadline, 0)
    // The successor inherited the first one's stdout, so wait for the exit itself, not the pipes.
    await waitUntil(() => !first.alive, 'the first process exited', 20_000)
    t.is(first.proc.exitCode, 0, first.stderr)
    t.true(handoff.successor > 0)
    process.kill(handoff.successor, 'SIGTERM')
    await waitUntil(() => !alive(handoff.successor), 'the successor drained and exited', 20_000)
  })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

testIf(hasCommand('systemd-socket-activate'), 'systemd-socket-activate is not installed')(
  'examples/l4-proxy.js takes its socket from systemd (socket activation)',
  async (t) => {
    const upstream = await headerEchoUpstream()
    const probe = net.createServer().listen(0, '127.0.0.1')
    await new Promise((resolve) => probe.once('listening', resolve))
    const port = (probe.address() as net.AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))
    const dir = privateDir()
    const activated = new Child(
      spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--fdname=proxy', process.execPath, EXAMPLE, '--upstream', `127.0.0.1:${upstream}`, '--path', path.join(dir, 'h.sock')], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    t.teardown(() => activated.kill())
    // systemd-socket-activate binds, then execs the program on the first connection.
    let r: Awaited<ReturnType<typeof exchange>> | null = null
    await waitUntil(async () => {
      r = await exchange(port, Buffer.from('activated')).catch(() => null)
      return r !== null
    }, 'an exchange through the activated proxy', 20_000, 50)
    r = r as unknown as Awaited<ReturnType<typeof exchange>>
    t.is(r.body.toString(), 'activated')
    const ready = JSON.parse(await activated.line('READY '))
    t.is(ready.source, 'systemd')
    activated.proc.kill('SIGTERM')
    await activated.line('DRAINED ', 20_000)
  },
)
