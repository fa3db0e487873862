// reactor.listenProxy: accept, route, connect (with retries), relay, all in the core; PROXY headers
// sent and received; admission limits; drain under load; bad options. Real loopback sockets, both
// reactor modes.
import test from 'ava'
import * as crypto from 'node:crypto'
import * as net from 'node:net'
import { Reactor, AddressFamily, InvalidAddressError, ProxyPort, sockets, IPv4Address } from 'reactor-socket'
import { MODES, fdList, fileTeardown, settleFds, within, waitUntil } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

/** A Node echo server on loopback; with `header`, each connection's first line (a v1 PROXY
 *  header) is answered with "got <line>\n" before the echo. */
async function echoServer(opts: { header?: boolean } = {}): Promise<{ port: number; server: net.Server; connections: () => number }> {
  let count = 0
  const server = net.createServer((s) => {
    count++
    s.on('error', () => {})
    if (!opts.header) return s.pipe(s)
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n')
      if (end < 0) return
      s.off('data', onData)
      s.write(`got ${buf.subarray(0, end).toString()}\n`)
      s.write(buf.subarray(end + 2))
      s.pipe(s)
    }
    s.on('data', onData)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => server.close())
  return { port: (server.address() as net.AddressInfo).port, server, connections: () => count }
}

/** A listening fd on loopback (closed by the caller once adopted). */
function listener(): { fd: number; port: number } {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const local = sockets.info(fd).local as IPv4Address
  return { fd, port: local.port }
}

function proxy(r: Reactor, options: Parameters<Reactor['listenProxy']>[2]): { port: ProxyPort; at: number } {
  const l = listener()
  const port = r.listenProxy(l.fd, AddressFamily.INET, options)
  sockets.close(l.fd)
  return { port, at: l.port }
}

/** Sends `payload` through `port` and reads as many bytes back. */
async function echoThrough(port: number, payload: Buffer): Promise<Buffer> {
  const c = net.connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  let have = 0
  const done = new Promise<Buffer>((resolve, reject) => {
    c.on('data', (d) => {
      chunks.push(d)
      have += d.length
      if (have >= payload.length) {
        c.end()
        resolve(Buffer.concat(chunks))
      }
    })
    c.on('error', reject)
    c.on('close', () => resolve(Buffer.concat(chunks)))
  })
  c.write(payload)
  return within(done, `${payload.length} bytes echoed through the proxy`)
}

/** Reads what a client gets back after sending `text` (until the proxy closes it or `want` bytes). */
async function exchange(port: number, text: string, want = Infinity): Promise<string> {
  const c = net.connect(port, '127.0.0.1')
  let got = ''
  const done = new Promise<string>((resolve) => {
    c.on('data', (d) => {
      got += d.toString()
      if (got.length >= want) {
        c.destroy()
        resolve(got)
      }
    })
    c.on('error', () => resolve(got))
    c.on('close', () => resolve(got))
  })
  c.write(text)
  return within(done, `an answer to ${JSON.stringify(text)}`)
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)

  test(`${tag} 32 clients at once through one upstream: every byte back, no JS per connection, the figures add up`, async (t) => {
    const up = await echoServer()
    const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up.port } })
    const payloads = Array.from({ length: 32 }, () => crypto.randomBytes(64 * 1024))
    const back = await Promise.all(payloads.map((p) => echoThrough(at, p)))
    back.forEach((b, i) => t.true(b.equals(payloads[i]), `client ${i}: every byte, in order`))
    await waitUntil(() => port.stats().connectionsActive === 0, 'every session ended')
    const s = port.stats()
    t.is(s.connectionsAccepted, 32)
    t.is(s.sessionsRelayed, 32)
    t.is(s.bytesToUpstream, 32 * 64 * 1024)
    t.is(s.bytesFromUpstream, 32 * 64 * 1024)
    await port.stopListening()
  })

  test(`${tag} a list of upstreams: round robin spreads, a refused one is retried on the next and counted`, async (t) => {
    const a = await echoServer()
    const b = await echoServer()
    const dead = listener() // listening, then closed: refused
    sockets.close(dead.fd)
    const { port, at } = proxy(r, {
      upstream: [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: dead.port }, { host: '127.0.0.1', port: b.port }],
      retries: 2,
    })
    for (let i = 0; i < 6; i++) t.is((await echoThrough(at, Buffer.from(`hi ${i}`))).toString(), `hi ${i}`)
    t.true(a.connections() >= 2 && b.connections() >= 2, `both live upstreams served (${a.connections()}, ${b.connections()})`)
    const s = port.stats()
    t.true(s.upstreamFailures[1] >= 1, 'the dead one was tried and counted')
    t.is(s.upstreamFailures[0] + s.upstreamFailures[2], 0)
    t.is(s.upstreamConnectFailures, s.upstreamFailures[1])
    await port.stopListening()
  })

  test(`${tag} a routing function picks each client's upstream in batches; null refuses; a throw is reported and refuses`, async (t) => {
    const reported: unknown[] = []
    const local = new Reactor({ thread: mode.thread, onError: (e) => reported.push(e) })
    t.teardown(() => local.close())
    const up = await echoServer()
    const seen: string[] = []
    let n = 0
    const { port, at } = proxy(local, {
      upstream: (client) => {
        seen.push((client.address as IPv4Address).host)
        n++
        if (n === 2) return null
        if (n === 3) throw new Error('route failed on purpose')
        return { host: '127.0.0.1', port: up.port }
      },
    })
    t.is(await exchange(at, 'first', 5), 'first')
    t.is(await exchange(at, 'second'), '', 'refused: closed with nothing sent')
    t.is(await exchange(at, 'third'), '', 'the throw refuses too')
    t.is(await exchange(at, 'fourth', 6), 'fourth')
    t.deepEqual(seen, ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1'])
    t.is(port.stats().refusedByRoute, 2)
    t.is(reported.length, 1)
    t.regex(String(reported[0]), /on purpose/)
  })

  test(`${tag} proxyHeader 'v1' / 'v2': the upstream gets the client's addresses before its bytes`, async (t) => {
    const up = await echoServer({ header: true })
    for (const version of ['v1'] as const) {
      const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up.port }, proxyHeader: version })
      const c = net.connect(at, '127.0.0.1')
      await new Promise<void>((resolve) => c.once('connect', resolve))
      const answer = new Promise<string>((resolve) => {
        let got = ''
        c.on('data', (d) => {
          got += d.toString()
          if (got.endsWith('payload')) resolve(got)
        })
      })
      c.write('payload')
      const got = await within(answer, 'the upstream\'s answer')
      t.is(got, `got PROXY TCP4 127.0.0.1 127.0.0.1 ${c.localPort} ${at}\npayload`)
      c.destroy()
      await port.stopListening()
    }
  })

  test(`${tag} proxyProtocol on a proxy port: the header's client goes on to the upstream; a bad header is refused and counted`, async (t) => {
    const up = await echoServer({ header: true })
    const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up.port }, proxyProtocol: { versions: [1] }, proxyHeader: 'v1' })
    const got = await exchange(at, 'PROXY TCP4 192.0.2.7 192.0.2.8 4444 443\r\nhello', 'got PROXY TCP4 192.0.2.7 192.0.2.8 4444 443\nhello'.length)
    t.is(got, 'got PROXY TCP4 192.0.2.7 192.0.2.8 4444 443\nhello')
    t.is(await exchange(at, 'GET / HTTP/1.1\r\n\r\n'), '', 'no header: closed, nothing forwarded')
    await waitUntil(() => port.stats().proxyHeaderErrors === 1, 'the bad header counted')
    await port.stopListening()
  })

  test(`${tag} maxConnections: more clients than the mark wait in the backlog and are served as others close`, async (t) => {
    const up = await echoServer()
    const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up.port }, maxConnections: 2 })
    const clients = Array.from({ length: 5 }, () => net.connect(at, '127.0.0.1'))
    for (const c of clients) c.on('error', () => {})
    await waitUntil(() => port.stats().sessionsRelayed === 2, 'two sessions at the mark')
    t.is(port.stats().connectionsAccepted, 2, 'the rest were not accepted (not accepted-and-closed)')
    await waitUntil(() => up.connections() === 2, 'the upstream saw both')
    for (const c of clients) c.destroy()
    await waitUntil(() => port.stats().connectionsAccepted === 5, 'the others accepted as the first closed')
    await waitUntil(() => port.stats().connectionsActive === 0, 'all closed')
    t.true(port.stats().pausedAtMax >= 1)
    await port.stopListening()
  })

  test(`${tag} drain under load with a successor on the same socket: nothing refused, no byte lost, the counts come back`, async (t) => {
    const up = await echoServer()
    const l = listener()
    const old = r.listenProxy(l.fd, AddressFamily.INET, { upstream: { host: '127.0.0.1', port: up.port } })
    const successor = new Reactor({ thread: mode.thread })
    t.teardown(() => successor.close())
    const next = successor.listenProxy(l.fd, AddressFamily.INET, { upstream: { host: '127.0.0.1', port: up.port } })
    sockets.close(l.fd)
    let stop = false
    let failures = 0
    let exchanges = 0
    const loop = async () => {
      while (!stop) {
        const payload = crypto.randomBytes(1 + crypto.randomInt(32 * 1024))
        try {
          const back = await echoThrough(l.port, payload)
          if (!back.equals(payload)) failures++
        } catch {
          failures++
        }
        exchanges++
      }
    }
    const loops = Array.from({ length: 8 }, loop)
    await waitUntil(() => exchanges >= 40, 'traffic through both')
    const counts = await within(old.drain({ deadline: 10_000, idleAfter: 5000 }), 'the old port drained', 20_000)
    await waitUntil(() => exchanges >= 120, 'traffic goes on through the successor')
    stop = true
    await Promise.all(loops)
    t.is(failures, 0, `every exchange complete and intact (${exchanges})`)
    t.is(counts.closedAtDeadline, 0)
    t.true(next.stats().sessionsRelayed > 0)
    await next.stopListening()
  })

  test(`${tag} bad options: typed errors at once, nothing opened`, async (t) => {
    const before = fdList()
    const l = listener()
    const up = { host: '127.0.0.1', port: 9 }
    const bad: Array<[unknown, RegExp | { instanceOf: any; code?: string }]> = [
      [undefined, { instanceOf: TypeError }],
      [{}, { instanceOf: TypeError }],
      [{ upstream: [] }, { instanceOf: TypeError }],
      // A name is for the caller to resolve (the core never blocks on DNS): the same error as the UDP forwarder's.
      [{ upstream: { host: 'localhost', port: 80 } }, { instanceOf: InvalidAddressError, code: 'ERR_INVALID_ADDRESS' }],
      [{ upstream: { host: '127.0.0.1', port: 0 } }, { instanceOf: RangeError }],
      [{ upstream: { host: '127.0.0.1', port: 65536 } }, { instanceOf: RangeError }],
      [{ upstream: up, connectTimeout: Infinity }, { instanceOf: RangeError }],
      [{ upstream: up, connectTimeout: -1 }, { instanceOf: RangeError }],
      [{ upstream: up, retries: 2 ** 32 }, { instanceOf: RangeError }],
      [{ upstream: up, bufferSize: 1e300 }, { instanceOf: RangeError }],
      [{ upstream: up, maxConnections: 0 }, { instanceOf: RangeError }],
      [{ upstream: up, maxConnections: 1.5 }, { instanceOf: TypeError }],
      [{ upstream: up, perSource: { max: NaN } }, { instanceOf: TypeError }],
      [{ upstream: up, acceptRate: { perSecond: Infinity } }, { instanceOf: RangeError }],
      [{ upstream: up, proxyProtocol: { versions: [3] } }, { instanceOf: RangeError }],
      [{ upstream: up, proxyProtocol: { trusted: ['10.0.0.0/33'] } }, { instanceOf: TypeError }],
      [{ upstream: up, proxyHeader: 'v3' }, { instanceOf: TypeError }],
      [{ upstream: up, balance: 'random' }, { instanceOf: TypeError }],
    ]
    for (const [options, expected] of bad) {
      t.throws(() => r.listenProxy(l.fd, AddressFamily.INET, options as any), expected as any, JSON.stringify(options))
    }
    t.throws(() => r.listenProxy(2 ** 32 + l.fd, AddressFamily.INET, { upstream: up }), { code: 'EBADF' })
    const udp = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
    t.throws(() => r.listenProxy(udp, AddressFamily.INET, { upstream: up }), { name: 'UnsupportedSocketType' })
    sockets.close(udp)
    sockets.close(l.fd)
    t.deepEqual(await settleFds(before), [], 'no fd left')
  })
}
