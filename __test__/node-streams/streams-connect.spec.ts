// SocketStream over connections the reactor connects itself (reactor.connectTCP / connectUNIX):
// ServerFactory.forStreams with a connect, and a stream handed to Node's http client while it is
// still connecting (as net.connect's socket is), including a refused connect. Both reactor modes.
import test from 'ava'
import * as http from 'node:http'
import * as net from 'node:net'
import { ConnectError, Reactor, ServerFactory, SocketStream } from 'reactor-socket'
import { MODES, fileTeardown, listenTcp4, portOf, closeFd, tmpSockPath, within } from '../helpers.js'
import { MiB, patternBytes, readAll, sha256 } from './streams-helpers.js'

const { reactors, cleanups } = fileTeardown()

/** A Node http server answering with the SHA-256 of the request body. */
async function hashServer(listen: (server: http.Server) => Promise<void>) {
  const server = http.createServer(async (req, res) => {
    const body = await readAll(req, 'the request body')
    res.end(`${req.method} ${req.url} ${sha256(body)}`)
  })
  cleanups.push(() => server.close())
  await within(listen(server), 'listen')
  return server
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  test(`${tag} forStreams with connectTCP: the connected stream carries an http request`, async (t) => {
    const server = await hashServer((s) => new Promise((res) => s.listen(0, '127.0.0.1', res)))
    const port = (server.address() as net.AddressInfo).port
    const made: SocketStream[] = []
    const protocol = await within(
      r.connectTCP('127.0.0.1', port, ServerFactory.forStreams((s) => made.push(s))),
      'connectTCP',
    )
    const stream = protocol!.stream
    cleanups.push(() => stream.destroy())
    t.deepEqual(made, [stream], 'the listener got the stream once connected')
    t.is(stream.remotePort, port)
    t.false(stream.connecting)
    const body = patternBytes(MiB, 4)
    const text = await within(
      new Promise<string>((resolve, reject) => {
        const req = http.request({ createConnection: () => stream as unknown as net.Socket, method: 'POST', path: '/c' }, async (res) =>
          resolve((await readAll(res, 'the response')).toString()),
        )
        req.once('error', reject)
        req.end(body)
      }),
      'the response',
    )
    t.is(text, `POST /c ${sha256(body)}`)
  })

  test(`${tag} a SocketStream given to http.request while connectTCP is still connecting`, async (t) => {
    const server = await hashServer((s) => new Promise((res) => s.listen(0, '127.0.0.1', res)))
    const port = (server.address() as net.AddressInfo).port
    const states: boolean[] = []
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    ;(agent as any).createConnection = () => {
      // As net.connect does: the socket comes back at once and connects later.
      const stream = new SocketStream()
      states.push(stream.connecting)
      r.connectTCP('127.0.0.1', port, { buildProtocol: () => stream.protocol }).catch((err) => stream.destroy(err))
      return stream
    }
    cleanups.push(() => agent.destroy())
    const get = (path: string, body: string) =>
      within(
        new Promise<string>((resolve, reject) => {
          const req = http.request({ agent, method: 'PUT', path }, async (res) => resolve((await readAll(res, 'the response')).toString()))
          req.once('error', reject)
          req.end(body)
        }),
        `PUT ${path}`,
      )
    t.is(await get('/a', 'first'), `PUT /a ${sha256(Buffer.from('first'))}`)
    t.is(await get('/b', 'second'), `PUT /b ${sha256(Buffer.from('second'))}`)
    t.deepEqual(states, [true], 'one stream, handed out while connecting, reused for the second request')
  })

  test(`${tag} a refused connect: the stream is destroyed with the ConnectError and the request fails with it`, async (t) => {
    const fd = listenTcp4()
    const port = portOf(fd)
    closeFd(fd) // nothing listens there any more
    const err = await within(
      new Promise<any>((resolve) => {
        const req = http.request({
          path: '/',
          createConnection: () => {
            const stream = new SocketStream()
            r.connectTCP('127.0.0.1', port, { buildProtocol: () => stream.protocol }).catch((e) => stream.destroy(e))
            return stream as unknown as net.Socket
          },
        })
        req.once('error', resolve)
        req.end()
      }),
      "the request's error",
    )
    t.true(err instanceof ConnectError)
    t.is(err.code, 'ECONNREFUSED')
  })

  test(`${tag} forStreams with connectUNIX`, async (t) => {
    const path = tmpSockPath('http')
    const server = await hashServer((s) => new Promise((res) => s.listen(path, res)))
    cleanups.push(() => server.close())
    const protocol = await within(r.connectUNIX(path, ServerFactory.forStreams(() => {})), 'connectUNIX')
    const stream = protocol!.stream
    cleanups.push(() => stream.destroy())
    t.is(stream.remoteAddress, undefined)
    const text = await within(
      new Promise<string>((resolve, reject) => {
        const req = http.request({ createConnection: () => stream as unknown as net.Socket, path: '/u' }, async (res) =>
          resolve((await readAll(res, 'the response')).toString()),
        )
        req.once('error', reject)
        req.end()
      }),
      'the response',
    )
    t.is(text, `GET /u ${sha256(Buffer.alloc(0))}`)
  })
}
