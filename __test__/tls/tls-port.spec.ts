// adoptStreamPort with `tls`: the handshake runs in the core and connectionMade comes after it,
// with transport.tlsInfo; reads and writes are plaintext for the protocol; loseConnection sends
// close_notify then FIN; a peer that leaves without close_notify is a truncation; a failed
// handshake never reaches the factory and is counted; SNI, ALPN, client certificates, versions;
// setSecureContext; SocketStream (http.Server fed with emit('connection')). Both reactor modes.
import * as crypto from 'node:crypto'
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { ConnectionDone, ConnectionLost, Reactor, ServerFactory, SocketStream, TLSError } from 'reactor-socket'
import { EchoRec, MODES, Rec, RecFactory, fileTeardown, waitUntil, within } from '../helpers.js'
import { closed, nodeTls, readBytes, serverTls, tlsMaterial, tlsPort, withOpenssl } from './tls-helpers.js'

const { reactors, cleanups } = fileTeardown()
const material = tlsMaterial()

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  withOpenssl(`${tag} connectionMade comes after the handshake, with tlsInfo; data is plaintext both ways; loseConnection sends close_notify then FIN`, async (t) => {
    const m = material.get()
    const seenAtMade: unknown[] = []
    class P extends EchoRec {
      connectionMade() {
        seenAtMade.push(this.t.tlsInfo)
        super.connectionMade()
      }
    }
    const { port, at, factory } = tlsPort(r, serverTls(m, { ALPNProtocols: ['h2', 'http/1.1'] }), new RecFactory(P))
    cleanups.push(() => void port.stopListening())
    const a = await nodeTls(at, { ca: m.ca, ALPNProtocols: ['http/1.1'] })
    if (!a.ok) return t.fail(`handshake failed: ${a.error}`)
    const client = a.socket
    const payload = crypto.randomBytes(300_000)
    const echoed = readBytes(client, payload.length)
    client.write(payload)
    t.true((await echoed).equals(payload), 'the echo came back whole')
    await waitUntil(() => factory.built.length === 1, 'the protocol')
    const p = factory.built[0] as Rec
    const info = seenAtMade[0] as any
    t.is(info.protocol, 'TLSv1.3')
    t.is(info.alpnProtocol, 'http/1.1')
    t.is(info.servername, 'localhost')
    t.regex(info.cipher, /^TLS_(AES|CHACHA20)/)
    t.deepEqual(info.peerCertificates, [], 'the client sent no certificate')
    t.false(info.resumed)
    t.is(client.getProtocol(), 'TLSv1.3')
    t.is(client.alpnProtocol, 'http/1.1')
    const end = closed(client)
    p.t.loseConnection()
    const how = await end
    t.true(how.ended, 'the Node client saw a clean end (close_notify before the FIN)')
    t.is(how.error, undefined)
    t.true((await p.waitLost()) instanceof ConnectionDone)
    t.true(r.stats().tlsSessionsUserspace >= 1)
    t.is(r.stats().tlsSessionsKtls, 0)
  })

  withOpenssl(`${tag} a peer's close_notify is an orderly end; a peer that closes without it gives ConnectionLost ERR_TLS_TRUNCATED`, async (t) => {
    const m = material.get()
    const { port, at, factory } = tlsPort(r, serverTls(m), new RecFactory(Rec)) // no echo: nothing unread at the close
    cleanups.push(() => void port.stopListening())
    const a = await nodeTls(at, { ca: m.ca })
    if (!a.ok) return t.fail(String(a.error))
    a.socket.end() // Node sends close_notify, then FIN
    await waitUntil(() => factory.built.length === 1, 'the protocol')
    t.true((await (factory.built[0] as Rec).waitLost()) instanceof ConnectionDone)

    // TLS over a TCP socket of our own, whose write side is then shut under it: no close_notify.
    const raw = net.connect(at, '127.0.0.1')
    const b = await nodeTls(at, { ca: m.ca, socket: raw })
    if (!b.ok) return t.fail(String(b.error))
    b.socket.on('error', () => {})
    b.socket.write('x')
    await waitUntil(() => factory.built.length === 2 && (factory.built[1] as Rec).bytes === 1, 'the byte')
    raw.end() // FIN under TLS (a FIN, not a close: a close with unread bytes would be a reset)
    const reason = await (factory.built[1] as Rec).waitLost()
    t.true(reason instanceof ConnectionLost)
    t.true(reason instanceof TLSError, `a TLSError: ${reason}`)
    t.is(reason.code, 'ERR_TLS_TRUNCATED')
    t.is(reason.alert, null)
  })

  withOpenssl(`${tag} half-close over TLS: loseWriteConnection sends close_notify then FIN, and the peer can still answer`, async (t) => {
    const m = material.get()
    class Half extends Rec {
      readLost = 0
      writeLost = 0
      readConnectionLost() {
        this.readLost++
      }
      writeConnectionLost() {
        this.writeLost++
      }
    }
    const { port, at, factory } = tlsPort(r, serverTls(m), new RecFactory(Half))
    cleanups.push(() => void port.stopListening())
    const a = await nodeTls(at, { ca: m.ca, allowHalfOpen: true } as tls.ConnectionOptions)
    if (!a.ok) return t.fail(String(a.error))
    a.socket.write('question')
    await waitUntil(() => factory.built.length === 1 && (factory.built[0] as Rec).text === 'question', 'the question')
    const p = factory.built[0] as Half
    const ended = new Promise<void>((resolve) => a.socket.once('end', () => resolve()))
    p.t.write('answer')
    p.t.loseWriteConnection()
    const got = await readBytes(a.socket, 6)
    t.is(got.toString(), 'answer')
    await within(ended, "the client to see our close_notify and FIN (its 'end')")
    await waitUntil(() => p.writeLost === 1, 'writeConnectionLost')
    a.socket.end('late reply') // the peer writes after our half-close, then closes its side
    await p.waitLost()
    t.is(p.text, 'questionlate reply')
    t.is(p.readLost, 1)
    t.true(p.reason instanceof ConnectionDone)
  })

  withOpenssl(`${tag} failed handshakes never reach the factory and are counted (untrusted certificate, no common version, not TLS)`, async (t) => {
    const m = material.get()
    const { port, at, factory } = tlsPort(r, serverTls(m, { minVersion: 'TLSv1.3' }))
    cleanups.push(() => void port.stopListening())
    const untrusting = await nodeTls(at, {}) // Node's own CAs do not know ours
    t.false(untrusting.ok)
    const old = await nodeTls(at, { ca: m.ca, maxVersion: 'TLSv1.2' })
    t.false(old.ok)
    t.regex(String(!old.ok && old.error.message), /protocol version|alert number 70/i)
    await waitUntil(() => port.stats().tlsHandshakeFailures === 2, () => `two failures counted (${port.stats().tlsHandshakeFailures})`)
    t.is(factory.built.length, 0, 'the factory heard of none')
    t.is(port.stats().connectionsAccepted, 2)
    t.true(r.stats().tlsHandshakeFailures >= 2)
  })

  withOpenssl(`${tag} SNI picks the certificate by name, the default otherwise; setSecureContext changes new handshakes only`, async (t) => {
    const m = material.get()
    const options = serverTls(m, { sni: { 'a.test': { cert: m.aTest.cert, key: m.aTest.key }, '*.wild.test': { cert: m.wild.cert, key: m.wild.key } } })
    const { port, at, factory } = tlsPort(r, options)
    cleanups.push(() => void port.stopListening())
    const cn = async (servername: string) => {
      const a = await nodeTls(at, { ca: m.ca, servername, checkServerIdentity: () => undefined })
      if (!a.ok) throw a.error
      const subject = a.socket.getPeerCertificate().subject.CN
      a.socket.destroy()
      return subject
    }
    t.is(await cn('a.test'), 'a.test')
    t.is(await cn('x.wild.test'), '*.wild.test')
    t.is(await cn('localhost'), 'localhost')
    const before = await nodeTls(at, { ca: m.ca })
    if (!before.ok) return t.fail(String(before.error))
    const fingerprint = (s: tls.TLSSocket) => s.getPeerCertificate().fingerprint256
    port.setSecureContext({ cert: m.localhost2.cert, key: m.localhost2.key })
    const after = await nodeTls(at, { ca: m.ca })
    if (!after.ok) return t.fail(String(after.error))
    t.not(fingerprint(after.socket), fingerprint(before.socket), 'a new handshake got the new certificate')
    t.is(fingerprint(after.socket), new crypto.X509Certificate(m.localhost2.cert).fingerprint256)
    // The established connection goes on.
    const echoed = readBytes(before.socket, 5)
    before.socket.write('still')
    t.is((await echoed).toString(), 'still')
    t.throws(() => port.setSecureContext({ cert: m.localhost.cert, key: m.aTest.key }), { code: 'ERR_TLS_KEY_MISMATCH' })
    before.socket.destroy()
    after.socket.destroy()
    await waitUntil(() => factory.built.every((p: Rec) => p.lostReasons.length === 1), 'every connection lost')
  })

  withOpenssl(`${tag} client certificates: required, optional, refused; the peer's chain is in tlsInfo`, async (t) => {
    const m = material.get()
    const required = tlsPort(r, serverTls(m, { requestCert: true, ca: m.ca }))
    const optional = tlsPort(r, serverTls(m, { requestCert: true, rejectUnauthorized: false, ca: m.ca }))
    cleanups.push(() => void required.port.stopListening(), () => void optional.port.stopListening())
    const withCert = await nodeTls(required.at, { ca: m.ca, cert: m.client.cert, key: m.client.key })
    if (!withCert.ok) return t.fail(String(withCert.error))
    withCert.socket.write('hi')
    await waitUntil(() => required.factory.built.length === 1, 'the protocol')
    const info = (required.factory.built[0] as Rec).t.tlsInfo
    t.true(info.peerCertificates.length >= 1, 'the chain the client sent (OpenSSL adds its CA)')
    t.true(info.peerCertificates[0].equals(new crypto.X509Certificate(m.client.cert).raw), 'the client leaf first, DER')
    withCert.socket.destroy()

    const without = await nodeTls(required.at, { ca: m.ca })
    // TLS 1.3: the client's handshake ends before the server checks; the alert follows.
    if (without.ok) {
      const end = await closed(without.socket)
      t.regex(String(end.error?.message), /certificate required|alert number 116/i)
    } else {
      t.regex(without.error.message, /certificate required|alert number 116/i)
    }
    const rogue = await nodeTls(required.at, { ca: m.ca, cert: m.rogueClient.cert, key: m.rogueClient.key })
    if (rogue.ok) {
      const end = await closed(rogue.socket)
      t.regex(String(end.error?.message), /unknown ca|alert number 48/i)
    } else {
      t.regex(rogue.error.message, /unknown ca|alert number 48/i)
    }
    await waitUntil(() => required.port.stats().tlsHandshakeFailures === 2, 'two refusals counted')
    t.is(required.factory.built.length, 1)

    const anonymous = await nodeTls(optional.at, { ca: m.ca })
    if (!anonymous.ok) return t.fail(String(anonymous.error))
    anonymous.socket.write('x')
    await waitUntil(() => optional.factory.built.length === 1, 'the optional port accepts a client without a certificate')
    t.deepEqual((optional.factory.built[0] as Rec).t.tlsInfo.peerCertificates, [])
    anonymous.socket.destroy()
  })

  withOpenssl(`${tag} TLS 1.2 and ALPN refusal`, async (t) => {
    const m = material.get()
    const { port, at, factory } = tlsPort(r, serverTls(m, { maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] }))
    cleanups.push(() => void port.stopListening())
    const a = await nodeTls(at, { ca: m.ca, ALPNProtocols: ['h2', 'http/1.1'] })
    if (!a.ok) return t.fail(String(a.error))
    a.socket.write('x')
    await waitUntil(() => factory.built.length === 1, 'the protocol')
    const info = (factory.built[0] as Rec).t.tlsInfo
    t.is(info.protocol, 'TLSv1.2')
    t.is(info.alpnProtocol, 'h2')
    t.regex(info.cipher, /^TLS_ECDHE_/)
    a.socket.destroy()
    const refused = await nodeTls(at, { ca: m.ca, ALPNProtocols: ['http/1.1'] })
    t.false(refused.ok)
    t.regex(String(!refused.ok && refused.error.message), /no application protocol|alert number 120/i)
    await waitUntil(() => port.stats().tlsHandshakeFailures === 1, 'the refusal counted')
  })

  withOpenssl(`${tag} an http.Server fed SocketStreams from a TLS port serves HTTPS without Node's tls in the path`, async (t) => {
    const m = material.get()
    const streams: SocketStream[] = []
    const server = http.createServer((req, res) => {
      const s = req.socket as unknown as SocketStream
      res.setHeader('x-encrypted', String(s.encrypted))
      res.setHeader('x-protocol', String(s.getProtocol()))
      res.end(`hello ${req.url}`)
    })
    cleanups.push(() => server.close())
    const { port, at } = tlsPort(r, serverTls(m), ServerFactory.forStreams((s) => {
      streams.push(s)
      server.emit('connection', s)
    }) as any)
    cleanups.push(() => void port.stopListening())
    const agent = new https.Agent({ keepAlive: false })
    const body = await within(
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port: at, path: '/x', ca: m.ca, servername: 'localhost', agent }, (res: http.IncomingMessage) => {
          let text = ''
          res.on('data', (d) => (text += d))
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }))
        })
        req.on('error', reject)
      }),
      'the https GET',
    )
    t.is(body.status, 200)
    t.is(body.text, 'hello /x')
    t.is(body.headers['x-encrypted'], 'true')
    t.is(body.headers['x-protocol'], 'TLSv1.3')
    t.true(streams[0].encrypted)
    t.deepEqual(streams[0].getPeerCertificate(), {}, 'the client sent none')
    t.is(streams[0].alpnProtocol, false)
    agent.destroy()
  })
}
