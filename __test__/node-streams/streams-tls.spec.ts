// SocketStream under Node's own TLS: https.Server fed with emit('connection', stream), a
// tls.TLSSocket made over a SocketStream on the server side, and tls.connect({ socket: stream }) as
// a client. The certificate is made at test time with openssl (the tests are skipped without it).
// Both reactor modes.
import test from 'ava'
import * as https from 'node:https'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { AddressFamily, Reactor, ServerFactory, SocketStream, sockets } from 'reactor-socket'
import { MODES, closeFd, fdList, fileTeardown, testIf, track, waitUntil, within } from '../helpers.js'
import { HAVE_OPENSSL, MiB, makeCert, once, patternBytes, readAll, removeCert, sha256, streamPort, type TestCert } from './streams-helpers.js'

const { reactors, cleanups } = fileTeardown()

const NO_OPENSSL = 'openssl is not installed, no certificate can be made'
const withOpenssl = testIf(HAVE_OPENSSL, NO_OPENSSL)

let cert: TestCert | undefined
test.before(async () => {
  if (HAVE_OPENSSL) cert = await makeCert()
})
test.after.always(() => removeCert(cert))

const PAYLOAD = patternBytes(MiB, 3)

function httpsGet(options: https.RequestOptions, body?: Buffer) {
  return within(
    new Promise<{ res: import('node:http').IncomingMessage; body: Buffer }>((resolve, reject) => {
      const req = https.request({ ca: cert!.cert, ...options }, async (res) => {
        try {
          resolve({ res, body: await readAll(res, 'the https response') })
        } catch (err) {
          reject(err)
        }
      })
      req.once('error', reject)
      req.end(body)
    }),
    `https ${options.path}`,
    20000,
  )
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const allowHalfOpen of [false, true]) {
    withOpenssl(`${tag} https.Server over SocketStream (allowHalfOpen ${allowHalfOpen}): keep-alive requests and a 1 MiB body`, async (t) => {
      const raw: SocketStream[] = []
      const server = https.createServer({ key: cert!.key, cert: cert!.cert }, async (req, res) => {
        const body = await readAll(req, 'the request body')
        res.setHeader('x-encrypted', String((req.socket as tls.TLSSocket).encrypted))
        res.setHeader('x-request-sha256', sha256(body))
        res.end(`${req.method} ${req.url}`)
      })
      cleanups.push(() => server.close())
      const p = streamPort(
        r,
        'v4',
        (s) => {
          raw.push(s)
          server.emit('connection', s)
        },
        { allowHalfOpen },
      )
      cleanups.push(() => void p.port.stopListening())
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
      cleanups.push(() => agent.destroy())
      for (let i = 0; i < 3; i++) {
        const { res, body } = await httpsGet({ host: '127.0.0.1', port: p.portNumber, servername: 'localhost', path: `/s${i}`, method: 'POST', agent }, PAYLOAD)
        t.is(res.statusCode, 200)
        t.is(body.toString(), `POST /s${i}`)
        t.is(res.headers['x-encrypted'], 'true')
        t.is(res.headers['x-request-sha256'], sha256(PAYLOAD))
      }
      t.is(raw.length, 1, 'one TLS connection carried every request')
      t.true(raw[0].bytesRead > 3 * PAYLOAD.length, 'the bytes went through the SocketStream')
      agent.destroy()
      await waitUntil(() => raw[0].destroyed, 'the server side to close')
    })
  }

  // The client ends right after its data: the peer's EOF reaches the stream while TLS still writes
  // the echo (64 KiB is the size where that showed), so the stream must let TLS end it.
  for (const [allowHalfOpen, size] of [[false, 64 * 1024], [false, MiB], [true, MiB]] as const) {
    withOpenssl(`${tag} new tls.TLSSocket(stream, { isServer: true }) echoes ${size} B to a Node TLS client that ends at once (allowHalfOpen ${allowHalfOpen})`, async (t) => {
      const secured: string[] = []
      const closed: SocketStream[] = []
      const p = streamPort(
        r,
        'v6',
        (s) => {
          s.once('close', () => closed.push(s))
          const secure = new tls.TLSSocket(s, { isServer: true, key: cert!.key, cert: cert!.cert })
          secure.on('secure', () => secured.push(String(secure.getProtocol())))
          secure.on('error', () => {})
          secure.pipe(secure) // echo, through TLS
        },
        { allowHalfOpen },
      )
      cleanups.push(() => void p.port.stopListening())
      const client = tls.connect({ host: '::1', port: p.portNumber!, ca: cert!.cert, servername: 'localhost' })
      cleanups.push(() => client.destroy())
      await once(client, 'secureConnect', 'the TLS handshake')
      t.true(client.authorized, `the client trusts the test certificate: ${client.authorizationError}`)
      const payload = PAYLOAD.subarray(0, size)
      const echoed = readAll(client, 'the echo')
      client.end(payload)
      t.is(sha256(await echoed), sha256(payload))
      t.is(secured.length, 1)
      t.regex(secured[0], /^TLSv1\.[23]$/)
      await waitUntil(() => closed.length === 1, 'the server stream to close')
    })
  }

  withOpenssl(`${tag} tls.connect({ socket: stream }) talks to a Node TLS server`, async (t) => {
    // allowHalfOpen on the Node server: it answers after the client's end.
    const server = tls.createServer({ key: cert!.key, cert: cert!.cert, allowHalfOpen: true }, async (s) => {
      const got = await readAll(s, 'the client data')
      s.end(`${sha256(got)}\n`)
    })
    cleanups.push(() => server.close())
    await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 'listen')
    const fd = track(sockets.connectTcp('127.0.0.1', (server.address() as net.AddressInfo).port))
    const stream = r.adoptStreamConnection(fd, AddressFamily.INET, ServerFactory.forStreams(() => {}))!.stream
    closeFd(fd)
    cleanups.push(() => stream.destroy())
    const closed = once(stream, 'close', 'the SocketStream to close')
    const secure = tls.connect({ socket: stream as unknown as net.Socket, ca: cert!.cert, servername: 'localhost' })
    cleanups.push(() => secure.destroy())
    await once(secure, 'secureConnect', 'the TLS handshake')
    t.true(secure.authorized)
    const answer = readAll(secure, 'the answer')
    secure.end(PAYLOAD)
    t.is((await answer).toString(), `${sha256(PAYLOAD)}\n`)
    await closed
    t.true(stream.bytesWritten > PAYLOAD.length)
  })
}

const serialWithOpenssl = HAVE_OPENSSL ? test.serial : test.skip
serialWithOpenssl(`no fd is left behind by https over SocketStreams (both modes)${HAVE_OPENSSL ? '' : ` (skipped: ${NO_OPENSSL})`}`, async (t) => {
  for (const mode of MODES) {
    const r = new Reactor({ thread: mode.thread })
    const server = https.createServer({ key: cert!.key, cert: cert!.cert }, (req, res) => res.end(req.url))
    const before = fdList()
    const p = streamPort(r, 'v4', (s) => server.emit('connection', s))
    const agent = new https.Agent({ keepAlive: true, maxSockets: 3 })
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => httpsGet({ host: '127.0.0.1', port: p.portNumber, servername: 'localhost', path: `/${i}`, agent })),
    )
    agent.destroy()
    await within(p.port.stopListening(), 'stopListening')
    server.close()
    await r.close()
    await waitUntil(() => JSON.stringify(fdList()) === JSON.stringify(before), () => `fds back to ${before} (now ${fdList()})`, 5000)
    t.deepEqual(fdList(), before)
  }
})
