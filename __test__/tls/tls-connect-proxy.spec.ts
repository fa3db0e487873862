// connectTCP with `tls` (tlsInfo, ALPN, client certificates, resumption with a reused options
// object), listenProxy with `tls` (decrypt in the core, plaintext to the upstream, no JS per
// connection) and with `upstreamTls` (TLS to the upstream, a PROXY header in the clear before it),
// startTLS between two connections of ours (handshakeCompleted on both), its argument and state
// errors, and reactor.relay() with a TLS transport. Both reactor modes.
import * as crypto from 'node:crypto'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { AddressFamily, Protocol, Reactor, ServerFactory, TLSError, sockets, type IPv4Address, type ProxyPort } from 'reactor-socket'
import { EchoRec, MODES, Rec, RecFactory, fileTeardown, waitUntil, within } from '../helpers.js'
import { nodeTls, readBytes, serverTls, tlsMaterial, tlsPort, withOpenssl } from './tls-helpers.js'

const { reactors, cleanups } = fileTeardown()
const material = tlsMaterial()

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => server.close())
  return (server.address() as net.AddressInfo).port
}

const echoServer = () => listen(net.createServer((s) => s.on('error', () => {}).pipe(s)))

function proxy(r: Reactor, options: Parameters<Reactor['listenProxy']>[2]): { port: ProxyPort; at: number } {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  try {
    const port = r.listenProxy(fd, AddressFamily.INET, options)
    cleanups.push(() => void port.stopListening())
    return { port, at: (port.getHost() as IPv4Address).port }
  } finally {
    sockets.close(fd)
  }
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  withOpenssl(`${tag} connectTCP with tls: connectionMade after the handshake, ALPN, a client certificate, and resumption with the same options object`, async (t) => {
    const m = material.get()
    const seen: { authorized: boolean; cn: string }[] = []
    const server = tls.createServer({ cert: m.localhost.cert, key: m.localhost.key, ca: m.ca, requestCert: true, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
      seen.push({ authorized: s.authorized, cn: String(s.getPeerCertificate().subject?.CN) })
      s.on('error', () => {})
      s.pipe(s)
    })
    const port = await listen(server)
    const options = { ca: m.ca, cert: m.client.cert, key: m.client.key, ALPNProtocols: ['h2'], servername: 'localhost' }
    const infos: any[] = []
    for (let i = 0; i < 2; i++) {
      const p = (await r.connectTCP('127.0.0.1', port, new RecFactory(EchoRec), { tls: options })) as Rec
      infos.push(p.t.tlsInfo)
      p.echo = false
      p.t.write(`hello ${i}`)
      await p.waitText(`hello ${i}`)
      p.t.loseConnection()
      await p.waitLost()
    }
    t.is(infos[0].protocol, 'TLSv1.3')
    t.is(infos[0].alpnProtocol, 'h2')
    t.is(infos[0].servername, 'localhost')
    t.true(infos[0].peerCertificates[0].equals(new crypto.X509Certificate(m.localhost.cert).raw), 'the server leaf, DER')
    t.false(infos[0].resumed)
    t.true(infos[1].resumed, 'the second connection resumed (a ticket from the first, kept with the options object)')
    t.true(seen[0].authorized, 'the server verified our client certificate')
    t.is(seen[0].cn, 'test client')
  })

  withOpenssl(`${tag} connectTCP with tls and rejectUnauthorized: false trusts any certificate; a host name is verified by default`, async (t) => {
    const m = material.get()
    const port = await listen(tls.createServer({ cert: m.aTest.cert, key: m.aTest.key }, (s) => s.on('error', () => {}).pipe(s)))
    const p = (await r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { tls: { rejectUnauthorized: false } })) as Rec
    t.is(p.t.tlsInfo.protocol, 'TLSv1.3')
    p.t.loseConnection()
    const err = await t.throwsAsync(r.connectTCP('localhost', port, new RecFactory(Rec), { tls: { ca: m.ca } }))
    t.true(err instanceof TLSError, 'the certificate names a.test, not localhost')
  })

  withOpenssl(`${tag} listenProxy with tls decrypts in the core and relays plaintext; SNI certificates; setSecureContext`, async (t) => {
    const m = material.get()
    let upstreamSaw = Buffer.alloc(0)
    const up = await listen(
      net.createServer((s) => {
        s.on('data', (d) => {
          if (upstreamSaw.length < 65536) upstreamSaw = Buffer.concat([upstreamSaw, d])
        })
        s.on('error', () => {})
        s.pipe(s)
      }),
    )
    const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up }, tls: serverTls(m, { sni: { 'a.test': { cert: m.aTest.cert, key: m.aTest.key } } }) })
    const payload = crypto.randomBytes(2 * 1024 * 1024)
    const a = await nodeTls(at, { ca: m.ca })
    if (!a.ok) return t.fail(String(a.error))
    const echoed = readBytes(a.socket, payload.length, 'the 2 MiB echo')
    a.socket.write(payload)
    t.true((await echoed).equals(payload), 'whole and in order')
    t.true(upstreamSaw.equals(payload.subarray(0, upstreamSaw.length)), 'the upstream got plaintext')
    const b = await nodeTls(at, { ca: m.ca, servername: 'a.test' })
    if (!b.ok) return t.fail(String(b.error))
    t.is(b.socket.getPeerCertificate().subject.CN, 'a.test')
    port.setSecureContext({ cert: m.localhost2.cert, key: m.localhost2.key })
    const c = await nodeTls(at, { ca: m.ca })
    if (!c.ok) return t.fail(String(c.error))
    t.is(c.socket.getPeerCertificate().fingerprint256, new crypto.X509Certificate(m.localhost2.cert).fingerprint256)
    for (const s of [a.socket, b.socket, c.socket]) s.end()
    const bad = await nodeTls(at, {})
    t.false(bad.ok)
    await waitUntil(() => port.stats().connectionsActive === 0, 'the sessions to end')
    const stats = port.stats()
    t.is(stats.sessionsRelayed, 3)
    t.is(stats.tlsHandshakeFailures, 1)
    t.is(stats.bytesSpliced, 0, 'TLS is copied through the sessions, never spliced')
    t.is(stats.bytesToUpstream, payload.length)
  })

  withOpenssl(`${tag} listenProxy with tls: a silent client is closed at the handshake timeout and counted; the upstream never hears of it`, async (t) => {
    const m = material.get()
    let upstreamConnections = 0
    const up = await listen(net.createServer((s) => (upstreamConnections++, s.on('error', () => {}).pipe(s))))
    const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up }, tls: serverTls(m, { handshakeTimeout: 300 }) })
    const silent = net.connect(at, '127.0.0.1')
    cleanups.push(() => silent.destroy())
    const started = Date.now()
    await within(new Promise((resolve) => silent.once('close', resolve).on('error', () => {}).resume()), 'the proxy to close the silent client')
    t.true(Date.now() - started >= 250, `not before the timeout (${Date.now() - started} ms)`)
    await waitUntil(() => port.stats().tlsHandshakeFailures === 1, 'counted')
    t.is(upstreamConnections, 0)
    t.is(port.stats().sessionsRelayed, 0)
  })

  withOpenssl(`${tag} listenProxy with upstreamTls: TLS to the upstream, a PROXY header in the clear before it`, async (t) => {
    const m = material.get()
    const headers: string[] = []
    const up = await listen(
      net.createServer((raw) => {
        raw.on('error', () => {})
        raw.once('readable', () => {
          // The PROXY v1 line, in the clear, then TLS.
          let line = ''
          for (let b: Buffer | null; (b = raw.read(1)) !== null; ) {
            line += b.toString()
            if (line.endsWith('\r\n')) break
          }
          headers.push(line)
          const secure = new tls.TLSSocket(raw, { isServer: true, cert: m.localhost.cert, key: m.localhost.key })
          secure.on('error', () => {})
          secure.pipe(secure)
        })
      }),
    )
    const { port, at } = proxy(r, { upstream: { host: '127.0.0.1', port: up }, upstreamTls: { ca: m.ca }, proxyHeader: 'v1' })
    const c = net.connect(at, '127.0.0.1')
    cleanups.push(() => c.destroy())
    const echoed = readBytes(c, 100_000)
    const payload = crypto.randomBytes(100_000)
    c.write(payload)
    t.true((await echoed).equals(payload))
    t.regex(headers[0], /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n$/)
    c.end()
    await waitUntil(() => port.stats().connectionsActive === 0, 'the session to end')
    t.true(r.stats().tlsSessionsUserspace >= 1)
  })

  withOpenssl(`${tag} startTLS between two connections of ours: bytes before in the clear, handshakeCompleted on both sides, then data`, async (t) => {
    const m = material.get()
    const log: string[] = []
    class Server extends Protocol {
      dataReceived(d: Buffer) {
        const text = d.toString()
        if (text === 'STARTTLS\r\n') {
          this.transport!.write('220 ready\r\n')
          this.transport!.startTLS(serverTls(m)) // the server side: an accepted connection
          t.throws(() => this.transport!.startTLS(serverTls(m)), { code: 'ERR_INVALID_STATE' })
        } else {
          log.push(`server got ${text}`)
          this.transport!.write(`secure ${text}`)
        }
      }
      handshakeCompleted() {
        log.push(`server handshake ${this.transport!.tlsInfo!.protocol}`)
      }
    }
    const factory = new ServerFactory()
    factory.protocol = Server
    const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
    const port = r.adoptStreamPort(fd, AddressFamily.INET, factory)
    sockets.close(fd)
    cleanups.push(() => void port.stopListening())
    let done!: () => void
    const finished = new Promise<void>((resolve) => (done = resolve))
    class Client extends Protocol {
      connectionMade() {
        t.is(this.transport!.tlsInfo, null)
        this.transport!.write('STARTTLS\r\n')
      }
      dataReceived(d: Buffer) {
        const text = d.toString()
        if (text === '220 ready\r\n') {
          this.transport!.startTLS({ ca: m.ca, servername: 'localhost' }) // the client side: a connection we made
          this.transport!.write('ping')
        } else {
          log.push(`client got ${text}`)
          this.transport!.loseConnection()
        }
      }
      handshakeCompleted() {
        log.push(`client handshake ${this.transport!.tlsInfo!.servername}`)
      }
      connectionLost() {
        done()
      }
    }
    const cf = new ServerFactory()
    cf.protocol = Client
    await r.connectTCP('127.0.0.1', (port.getHost() as IPv4Address).port, cf)
    await within(finished, 'the exchange')
    t.deepEqual(log.sort(), ['client got secure ping', 'client handshake localhost', 'server got ping', 'server handshake TLSv1.3'])
  })

  withOpenssl(`${tag} startTLS refuses bad options and closed connections; relay() carries a TLS transport's plaintext`, async (t) => {
    const m = material.get()
    const up = await echoServer()
    const relays: Promise<unknown>[] = []
    const factory = new RecFactory(Rec)
    const { port, at } = tlsPort(r, serverTls(m), factory)
    cleanups.push(() => void port.stopListening())
    const a = await nodeTls(at, { ca: m.ca })
    if (!a.ok) return t.fail(String(a.error))
    a.socket.write('x')
    await waitUntil(() => factory.built.length === 1, 'the TLS connection')
    const tlsSide = factory.built[0] as Rec
    t.throws(() => tlsSide.t.startTLS(serverTls(m)), { code: 'ERR_INVALID_STATE' }, 'already TLS')
    const plain = (await r.connectTCP('127.0.0.1', up, new RecFactory(Rec))) as Rec
    t.throws(() => plain.t.startTLS({ cert: 'not a certificate', key: 'nor a key' }, { server: true }), { code: 'ERR_TLS_CERT' })
    t.throws(() => plain.t.startTLS({ ca: m.ca, minVersion: 'TLSv1.0' as any }), { code: 'ERR_INVALID_ARG_VALUE' })
    relays.push(r.relay(tlsSide.t, plain.t))
    const echoed = readBytes(a.socket, 50_000)
    a.socket.write('y'.repeat(50_000))
    const got = await echoed
    t.is(got.toString(), 'y'.repeat(50_000), 'decrypted to the echo server and encrypted back, in the core')
    a.socket.end()
    await within(Promise.all(relays), 'the relay to end')
    t.throws(() => plain.t.startTLS({ ca: m.ca }), { code: 'ERR_INVALID_STATE' }, 'a closed connection')
  })
}
