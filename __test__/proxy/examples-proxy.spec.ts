// examples/proxy.js, run as a user would: a child process adopting its listening socket, connecting
// upstream per client with connectTCP and relaying natively. Clients' bytes checked by hash; SIGTERM
// stops it cleanly. Both reactor modes.
import test from 'ava'
import * as crypto from 'node:crypto'
import * as net from 'node:net'
import * as path from 'node:path'
import { MODES, child, fileTeardown, within } from '../helpers.js'

const { cleanups } = fileTeardown()
const PROXY = path.join(process.cwd(), 'examples', 'proxy.js')

async function echoUpstream(): Promise<number> {
  const server = net.createServer((s) => s.pipe(s))
  cleanups.push(() => server.close())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as net.AddressInfo).port
}

/** Sends `payload` through the proxy and returns what came back. */
function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const c = net.connect(port, '127.0.0.1', () => c.end(payload))
    c.on('data', (d) => chunks.push(d))
    c.on('end', () => resolve(Buffer.concat(chunks)))
    c.on('error', reject)
  })
}

for (const mode of MODES) {
  test(`[${mode.name}] examples/proxy.js relays 20 clients (1 MiB each, checked), then stops on SIGTERM`, async (t) => {
    const upstream = await echoUpstream()
    const args = ['--upstream', `127.0.0.1:${upstream}`, ...(mode.thread ? [] : ['--no-thread'])]
    const proxy = child(PROXY, args)
    const listening = await proxy.line('listening on')
    const port = Number(listening.slice(listening.lastIndexOf(':') + 1))
    const payloads = Array.from({ length: 20 }, () => crypto.randomBytes(1 << 20))
    const echoed = await within(Promise.all(payloads.map((p) => roundTrip(port, p))), 'all clients echoed', 30000)
    echoed.forEach((e, i) => t.is(crypto.createHash('sha256').update(e).digest('hex'), crypto.createHash('sha256').update(payloads[i]).digest('hex')))
    proxy.proc.kill('SIGTERM')
    const result = await proxy.wait()
    t.is(result.code, 0, result.stderr)
    t.regex(result.stdout, /stopped after 20 relayed connections/)
  })

  test(`[${mode.name}] examples/proxy.js: an upstream that refuses closes the client, and the proxy keeps serving`, async (t) => {
    const closedServer = net.createServer()
    await new Promise<void>((resolve) => closedServer.listen(0, '127.0.0.1', resolve))
    const gone = (closedServer.address() as net.AddressInfo).port
    await new Promise((resolve) => closedServer.close(resolve)) // connections to it are refused
    const proxy = child(PROXY, ['--upstream', `127.0.0.1:${gone}`, ...(mode.thread ? [] : ['--no-thread'])])
    const listening = await proxy.line('listening on')
    const port = Number(listening.slice(listening.lastIndexOf(':') + 1))
    const closed = await within(
      new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1')
        let code = 'none'
        c.on('error', (e: any) => (code = e.code))
        c.on('close', () => resolve(code))
      }),
      'client closed',
    )
    t.true(['ECONNRESET', 'EPIPE', 'none'].includes(closed), `the client's connection closed (error: ${closed})`)
    await within(
      (async () => {
        while (!/ECONNREFUSED/.test(proxy.stderr)) await new Promise((resolve) => setImmediate(resolve))
      })(),
      'the proxy reports the refusal',
    )
    t.true(proxy.alive)
    proxy.proc.kill('SIGTERM')
    t.is((await proxy.wait()).code, 0)
  })
}
