// SocketStream under Node's own http: an http.Server fed with server.emit('connection', stream) and
// driven by Node's real http client (keep-alive, pipelining, 16 MiB bodies both ways checked by
// SHA-256), and Node's http client running over a SocketStream (createConnection, and an Agent that
// keeps the stream alive between requests). Both reactor modes; no fd is left behind.
import test from 'ava'
import * as http from 'node:http'
import * as net from 'node:net'
import { AddressFamily, Reactor, ServerFactory, SocketStream, sockets } from 'reactor-socket'
import { MODES, closeFd, fdList, fileTeardown, nodeClient, track, waitUntil, within, type PairKind } from '../helpers.js'
import { MiB, patternBytes, readAll, sha256, streamPort } from './streams-helpers.js'

const { reactors, cleanups } = fileTeardown()

const BIG = patternBytes(16 * MiB, 7)
const BIG_HASH = sha256(BIG)

/** An http.Server that is only ever given SocketStreams (it never listens itself). */
function httpServer(handler: http.RequestListener) {
  const server = http.createServer(handler)
  const streams: SocketStream[] = []
  server.on('connection', (s: unknown) => {
    if (s instanceof SocketStream) streams.push(s)
  })
  cleanups.push(() => server.close())
  return { server, streams }
}

/** Sends one request with Node's http client and collects the response. */
function request(
  options: http.RequestOptions,
  body?: Buffer | string,
): Promise<{ res: http.IncomingMessage; body: Buffer }> {
  return within(
    new Promise((resolve, reject) => {
      const req = http.request(options, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.once('end', () => resolve({ res, body: Buffer.concat(chunks) }))
        res.once('error', reject)
      })
      req.once('error', reject)
      req.end(body)
    }),
    `response to ${options.method ?? 'GET'} ${options.path}`,
    30000,
  )
}

/** Writes `data` in slices, waiting for 'drain' whenever write() says so; returns how often it did. */
async function writeWithBackpressure(w: NodeJS.WritableStream, data: Buffer, slice = 256 * 1024): Promise<number> {
  let waits = 0
  for (let off = 0; off < data.length; off += slice) {
    if (!w.write(data.subarray(off, off + slice))) {
      waits++
      await within(new Promise((r) => w.once('drain', r)), "'drain'", 20000)
    }
  }
  return waits
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const kind of ['v4', 'v6', 'unix'] as PairKind[]) {
    test(`${tag} ${kind}: http.Server over SocketStream serves keep-alive requests on one connection`, async (t) => {
      const { server, streams } = httpServer((req, res) => {
        const s = req.socket as unknown as SocketStream
        res.setHeader('x-remote', `${s.remoteFamily ?? 'unix'}/${s.remoteAddress ?? '-'}`)
        res.end(`hello ${req.url}`)
      })
      const p = streamPort(r, kind, (s) => server.emit('connection', s))
      cleanups.push(() => void p.port.stopListening())
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      cleanups.push(() => agent.destroy())
      const target: http.RequestOptions =
        kind === 'unix' ? { socketPath: p.path } : { host: p.host, port: p.portNumber }
      for (let i = 0; i < 5; i++) {
        const { res, body } = await request({ ...target, path: `/r${i}`, agent })
        t.is(res.statusCode, 200)
        t.is(body.toString(), `hello /r${i}`)
        const expected = kind === 'v4' ? 'IPv4/127.0.0.1' : kind === 'v6' ? 'IPv6/::1' : 'unix/-'
        t.is(res.headers['x-remote'], expected)
      }
      t.is(streams.length, 1, 'every request used the same connection')
      agent.destroy()
      await waitUntil(() => streams[0].destroyed, 'the server side to close after the client left')
    })
  }

  test(`${tag} after server.emit('listening'), server.close() closes idle keep-alive streams at once`, async (t) => {
    const { server, streams } = httpServer((req, res) => res.end('ok'))
    server.emit('listening') // turns on Node's connection tracking for a server that never listens
    const p = streamPort(r, 'v4', (s) => server.emit('connection', s))
    cleanups.push(() => void p.port.stopListening())
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    cleanups.push(() => agent.destroy())
    t.is((await request({ host: p.host, port: p.portNumber, path: '/', agent })).body.toString(), 'ok')
    t.is(streams.length, 1)
    server.close()
    // Without tracking only the keep-alive timeout (5 s) would end it.
    await waitUntil(() => streams[0].destroyed && !streams[0].transport!.connected, 'the idle stream to close', 3000)
  })

  test(`${tag} pipelined requests (two written back to back) are answered in order`, async (t) => {
    const { server } = httpServer((req, res) => {
      // The first answer is late, so the second request is parsed while the first is pending.
      if (req.url === '/first') setTimeout(() => res.end('one'), 50)
      else res.end('two')
    })
    const p = streamPort(r, 'v4', (s) => server.emit('connection', s))
    cleanups.push(() => void p.port.stopListening())
    const client = await nodeClient(p.portNumber!)
    cleanups.push(() => client.destroy())
    client.sock.write(
      'GET /first HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    )
    await client.waitEnd()
    const text = client.text
    const first = text.indexOf('\r\n\r\none')
    const second = text.indexOf('\r\n\r\ntwo')
    t.true(first > 0 && second > first, `both answers, in order: ${JSON.stringify(text)}`)
    t.is(text.split('HTTP/1.1 200 OK').length - 1, 2)
    t.regex(text, /Connection: close/i)
  })

  test(`${tag} 16 MiB request body and 16 MiB response body, both checked by SHA-256`, async (t) => {
    let drainWaits = 0
    const { server } = httpServer(async (req, res) => {
      const body = await readAll(req, 'the request body', 30000)
      res.setHeader('x-request-sha256', sha256(body))
      res.setHeader('content-length', BIG.length)
      drainWaits = await writeWithBackpressure(res, BIG)
      res.end()
    })
    const p = streamPort(r, 'v4', (s) => server.emit('connection', s))
    cleanups.push(() => void p.port.stopListening())
    const { res, body } = await request({ host: p.host, port: p.portNumber, method: 'POST', path: '/big' }, BIG)
    t.is(res.headers['x-request-sha256'], BIG_HASH, 'the server received every byte, in order')
    t.is(body.length, BIG.length)
    t.is(sha256(body), BIG_HASH, 'the client received every byte, in order')
    t.log(`the response waited for 'drain' ${drainWaits} times`)
  })

  test(`${tag} http.request over a SocketStream (createConnection), 16 MiB both ways`, async (t) => {
    const server = http.createServer(async (req, res) => {
      const body = await readAll(req, 'the request body', 30000)
      res.setHeader('x-request-sha256', sha256(body))
      res.end(BIG)
    })
    cleanups.push(() => server.close())
    await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 'listen')
    const port = (server.address() as net.AddressInfo).port
    const fd = track(sockets.connectTcp('127.0.0.1', port))
    const stream = r.adoptStreamConnection(fd, AddressFamily.INET, ServerFactory.forStreams(() => {}))!.stream
    closeFd(fd)
    cleanups.push(() => stream.destroy())
    t.is(stream.remotePort, port)
    t.is(stream.remoteFamily, 'IPv4')
    const closed = new Promise((resolve) => stream.once('close', resolve))
    const { res, body } = await request({ createConnection: () => stream as unknown as net.Socket, method: 'PUT', path: '/up' }, BIG)
    t.is(res.statusCode, 200)
    t.is(res.headers['x-request-sha256'], BIG_HASH)
    t.is(sha256(body), BIG_HASH)
    // Without an agent the request asked for "Connection: close": the stream closes by itself.
    await within(closed, 'the client stream to close')
    t.true(stream.bytesRead >= BIG.length)
    t.true(stream.bytesWritten >= BIG.length)
  })

  test(`${tag} an http.Agent keeps a SocketStream alive between requests`, async (t) => {
    const server = http.createServer((req, res) => res.end(`${req.url} on ${req.socket.remotePort}`))
    cleanups.push(() => server.close())
    await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 'listen')
    const port = (server.address() as net.AddressInfo).port
    const made: SocketStream[] = []
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    ;(agent as any).createConnection = () => {
      const fd = track(sockets.connectTcp('127.0.0.1', port))
      const stream = r.adoptStreamConnection(fd, AddressFamily.INET, ServerFactory.forStreams(() => {}))!.stream
      closeFd(fd)
      made.push(stream)
      return stream
    }
    cleanups.push(() => agent.destroy())
    const answers: string[] = []
    for (let i = 0; i < 4; i++) answers.push((await request({ path: `/k${i}`, agent })).body.toString())
    t.is(made.length, 1, 'one connection for all requests')
    const local = made[0].localPort
    t.deepEqual(answers, [0, 1, 2, 3].map((i) => `/k${i} on ${local}`))
    agent.destroy()
    await waitUntil(() => made[0].destroyed, 'the pooled stream to close')
  })
}

test.serial('no fd is left behind by http over SocketStreams (both modes)', async (t) => {
  for (const mode of MODES) {
    const r = new Reactor({ thread: mode.thread })
    const { server } = httpServer((req, res) => res.end(req.url))
    const before = fdList()
    const p = streamPort(r, 'v4', (s) => server.emit('connection', s))
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => request({ host: p.host, port: p.portNumber, path: `/${i}`, agent })),
    )
    await request({ host: p.host, port: p.portNumber, path: '/close', headers: { connection: 'close' } })
    agent.destroy()
    await within(p.port.stopListening(), 'stopListening')
    server.close()
    await r.close()
    await waitUntil(() => JSON.stringify(fdList()) === JSON.stringify(before), () => `fds back to ${before} (now ${fdList()})`, 5000)
    t.deepEqual(fdList(), before)
  }
})
