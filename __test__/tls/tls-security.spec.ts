// TLS security properties over real sockets: nothing written before a handshake completes leaves
// in the clear (bytes written before startTLS do, as they must); refused certificates (unknown
// CA, expired, wrong name), a wrong SNI and a failed client certificate end in a TLSError with
// its code and alert; truncation is reported; a TLS 1.3 KeyUpdate is handled; a renegotiation is
// refused; a flood of stalled handshakes stays bounded in memory; a silent client is closed by the
// handshake timeout. Both reactor modes.
import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { AddressFamily, Protocol, Reactor, ServerFactory, TLSError, sockets } from 'reactor-socket'
import { MODES, MiB, Rec, RecFactory, fileTeardown, rss, waitUntil, within } from '../helpers.js'
import { killOpenssl, nodeTls, opensslChild, readBytes, serverTls, tlsMaterial, tlsPort, withOpenssl, HAVE_OPENSSL, NO_OPENSSL } from './tls-helpers.js'

const { reactors, cleanups } = fileTeardown()
const material = tlsMaterial()
const testIfOpenssl = HAVE_OPENSSL ? test : test.skip
test.after.always(killOpenssl)

/** A TCP relay on loopback that records every byte each way: what an eavesdropper would see. */
async function eavesdropper(to: number): Promise<{ port: number; toClient: () => Buffer; toServer: () => Buffer }> {
  const down: Buffer[] = []
  const up: Buffer[] = []
  const server = net.createServer((c) => {
    const s = net.connect(to, '127.0.0.1')
    c.on('data', (d) => up.push(d))
    s.on('data', (d) => down.push(d))
    c.pipe(s).on('error', () => {})
    s.pipe(c).on('error', () => {})
    c.on('error', () => s.destroy())
    s.on('error', () => c.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => server.close())
  return { port: (server.address() as net.AddressInfo).port, toClient: () => Buffer.concat(down), toServer: () => Buffer.concat(up) }
}

/** A plain TCP server (Node) that answers STARTTLS, then speaks TLS with `options` and echoes. */
async function startTlsServer(options: tls.TlsOptions): Promise<{ port: number; errors: Error[] }> {
  const errors: Error[] = []
  const server = net.createServer((raw) => {
    raw.once('data', () => {
      raw.write('220 go ahead\r\n')
      const secure = new tls.TLSSocket(raw, { isServer: true, ...options })
      secure.on('error', (e) => errors.push(e))
      secure.pipe(secure)
    })
    raw.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => server.close())
  return { port: (server.address() as net.AddressInfo).port, errors }
}

/** A client protocol that sends STARTTLS, starts TLS on the answer, and writes `secret` at once. */
class StartTlsClient extends Rec {
  tlsOptions: object = {}
  secret = ''
  completed = 0
  connectionMade() {
    super.connectionMade()
    this.t.write('STARTTLS\r\n')
  }
  dataReceived(d: Buffer) {
    super.dataReceived(d)
    if (this.completed === 0 && this.text.includes('220 go ahead\r\n') && this.t.tlsInfo === null && !this.started) {
      this.started = true
      this.t.startTLS(this.tlsOptions)
      this.t.write(this.secret) // before the handshake completes: held, then encrypted
    }
  }
  started = false
  handshakeCompleted() {
    this.completed++
  }
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  withOpenssl(`${tag} a server's startTLS: the bytes before it go out in the clear, those after it never do`, async (t) => {
    const m = material.get()
    class Starter extends Protocol {
      dataReceived(d: Buffer) {
        if (d.toString() !== 'STARTTLS\r\n') return
        this.transport!.write('220 go ahead\r\n')
        this.transport!.startTLS(serverTls(m))
        this.transport!.write('SECRET-WRITTEN-DURING-THE-HANDSHAKE')
      }
      handshakeCompleted() {
        this.transport!.write('|SECRET-AFTER-IT')
      }
    }
    const factory = new ServerFactory()
    factory.protocol = Starter
    const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
    const port = r.adoptStreamPort(fd, AddressFamily.INET, factory)
    sockets.close(fd)
    cleanups.push(() => void port.stopListening())
    const spy = await eavesdropper((port.getHost() as any).port)
    const raw = net.connect(spy.port, '127.0.0.1')
    cleanups.push(() => raw.destroy())
    raw.write('STARTTLS\r\n')
    t.is((await readBytes(raw, 14, 'the plaintext answer')).toString(), '220 go ahead\r\n')
    const secure = tls.connect({ socket: raw, ca: m.ca, servername: 'localhost' })
    const got = await readBytes(secure, 'SECRET-WRITTEN-DURING-THE-HANDSHAKE|SECRET-AFTER-IT'.length)
    t.is(got.toString(), 'SECRET-WRITTEN-DURING-THE-HANDSHAKE|SECRET-AFTER-IT')
    const wire = spy.toClient()
    t.true(wire.includes('220 go ahead\r\n'), 'written before startTLS: in the clear')
    t.false(wire.includes('SECRET'), 'nothing written after startTLS is on the wire in the clear')
    secure.destroy()
  })

  withOpenssl(`${tag} a client's startTLS: what it writes during the handshake is never on the wire in the clear; handshakeCompleted once`, async (t) => {
    const m = material.get()
    const upstream = await startTlsServer({ cert: m.localhost.cert, key: m.localhost.key })
    const spy = await eavesdropper(upstream.port)
    const factory = new RecFactory(StartTlsClient)
    const p = (await r.connectTCP('127.0.0.1', spy.port, {
      buildProtocol: (addr) => {
        const proto = factory.buildProtocol(addr) as StartTlsClient
        proto.tlsOptions = { ca: m.ca, servername: 'localhost' }
        proto.secret = 'CLIENT-SECRET'
        return proto
      },
    })) as StartTlsClient
    await p.waitText('CLIENT-SECRET') // echoed back through TLS
    t.is(p.completed, 1)
    t.is(p.t.tlsInfo.protocol, 'TLSv1.3')
    t.false(spy.toServer().includes('CLIENT-SECRET'), 'never in the clear')
    t.true(spy.toServer().includes('STARTTLS\r\n'), 'the bytes before startTLS are')
    p.t.loseConnection()
    await p.waitLost()
  })

  withOpenssl(`${tag} refused certificates end in TLSError with code and alert: expired, unknown CA, wrong name (connectTCP rejects; startTLS loses the connection)`, async (t) => {
    const m = material.get()
    const servers: Record<string, number> = {}
    for (const [name, c] of [['expired', m.expired], ['good', m.localhost]] as const) {
      const s = tls.createServer({ cert: c.cert, key: c.key }, (sock) => sock.pipe(sock))
      s.on('tlsClientError', () => {})
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
      cleanups.push(() => s.close())
      servers[name] = (s.address() as net.AddressInfo).port
    }
    const refusal = async (port: number, options: object) => {
      const err = await t.throwsAsync(r.connectTCP('127.0.0.1', port, new RecFactory(Rec), { tls: options }))
      t.true(err instanceof TLSError, `a TLSError: ${err}`)
      return err as TLSError
    }
    const expired = await refusal(servers.expired, { ca: m.ca, servername: 'localhost' })
    t.is(expired.code, 'ERR_TLS_CERT_VERIFY')
    t.is(expired.alert, 'certificate_expired')
    t.false(expired.alertReceived, 'we sent it')
    const unknown = await refusal(servers.good, { ca: await rogueCa(m), servername: 'localhost' })
    t.is(unknown.code, 'ERR_TLS_CERT_VERIFY')
    t.is(unknown.alert, 'unknown_ca')
    const wrongName = await refusal(servers.good, { ca: m.ca, servername: 'not-localhost.test' })
    t.is(wrongName.code, 'ERR_TLS_CERT_VERIFY')
    t.is(typeof wrongName.alert, 'string')

    // startTLS on a live connection: the protocol loses it with the TLSError.
    const upstream = await startTlsServer({ cert: m.expired.cert, key: m.expired.key })
    const p = (await r.connectTCP('127.0.0.1', upstream.port, {
      buildProtocol: () => Object.assign(new StartTlsClient(), { tlsOptions: { ca: m.ca, servername: 'localhost' }, secret: 'never' }),
    })) as StartTlsClient
    const reason = await p.waitLost()
    t.true(reason instanceof TLSError)
    t.is(reason.code, 'ERR_TLS_CERT_VERIFY')
    t.is(reason.alert, 'certificate_expired')
    t.is(p.completed, 0, 'no handshakeCompleted')
  })

  withOpenssl(`${tag} a wrong SNI is refused with unrecognized_name; a missing client certificate with certificate_required`, async (t) => {
    const m = material.get()
    const sniOnly = tlsPort(r, { sni: { 'a.test': { cert: m.aTest.cert, key: m.aTest.key } } })
    cleanups.push(() => void sniOnly.port.stopListening())
    const err = await t.throwsAsync(r.connectTCP('127.0.0.1', sniOnly.at, new RecFactory(Rec), { tls: { ca: m.ca, servername: 'nomatch.test' } }))
    t.true(err instanceof TLSError)
    t.is((err as TLSError).code, 'ERR_TLS_ALERT')
    t.is((err as TLSError).alert, 'unrecognized_name')
    t.true((err as TLSError).alertReceived, 'the server sent it')
    await waitUntil(() => sniOnly.port.stats().tlsHandshakeFailures === 1, 'the server counted it')

    const strict = tlsPort(r, serverTls(m, { requestCert: true, ca: m.ca }))
    cleanups.push(() => void strict.port.stopListening())
    // TLS 1.3: the client's handshake completes before the server checks; the alert ends it.
    const p = (await r.connectTCP('127.0.0.1', strict.at, new RecFactory(Rec), { tls: { ca: m.ca, servername: 'localhost' } })) as Rec
    const reason = await p.waitLost()
    t.true(reason instanceof TLSError, String(reason))
    t.is(reason.code, 'ERR_TLS_ALERT')
    t.is(reason.alert, 'certificate_required')
    // TLS 1.2: the refusal comes inside the client's handshake.
    const err12 = await t.throwsAsync(
      r.connectTCP('127.0.0.1', strict.at, new RecFactory(Rec), { tls: { ca: m.ca, servername: 'localhost', maxVersion: 'TLSv1.2' } }),
    )
    t.true(err12 instanceof TLSError)
    t.is((err12 as TLSError).code, 'ERR_TLS_ALERT')
    t.truthy((err12 as TLSError).alert)
    await waitUntil(() => strict.port.stats().tlsHandshakeFailures === 2, 'both refusals counted')
    t.is(strict.factory.built.length, 0)
  })

  withOpenssl(`${tag} a client that connects and sends nothing is closed by the handshake timeout, counted, never built`, async (t) => {
    const m = material.get()
    const { port, at, factory } = tlsPort(r, serverTls(m, { handshakeTimeout: 300 }))
    cleanups.push(() => void port.stopListening())
    const silent = net.connect(at, '127.0.0.1')
    cleanups.push(() => silent.destroy())
    const started = Date.now()
    await within(new Promise((resolve) => silent.once('close', resolve).on('error', () => {}).resume()), 'the server to close the silent client')
    const waited = Date.now() - started
    t.true(waited >= 250, `not before the timeout (${waited} ms)`)
    t.true(waited < 5000, `soon after it (${waited} ms)`)
    await waitUntil(() => port.stats().tlsHandshakeFailures === 1, 'counted')
    t.is(factory.built.length, 0)
  })

  testIfOpenssl(`${tag} openssl s_client: a TLS 1.3 KeyUpdate keeps data flowing; a TLS 1.2 renegotiation is refused (no second handshake)`, async (t) => {
    const m = material.get()
    const { port, at, factory } = tlsPort(r, serverTls(m))
    cleanups.push(() => void port.stopListening())
    const k = opensslChild(['s_client', '-connect', `127.0.0.1:${at}`, '-tls1_3', '-servername', 'localhost', '-CAfile', m.caPath, '-verify_return_error'], m.dir)
    await waitUntil(() => factory.built.length === 1, 'the TLS 1.3 connection')
    const p = factory.built[0] as Rec
    k.send('before\n')
    await p.waitText('before\n')
    k.send('K\n')
    await waitUntil(() => k.stderr.includes('KEYUPDATE'), () => `s_client to update its keys: ${k.stderr}`)
    k.send('after update\n')
    await p.waitText('after update\n')
    await waitUntil(() => k.stdout.includes('after update'), 'the echo after the update (our side answered the update request)')
    t.is(p.lostReasons.length, 0)
    k.kill()

    const rn = opensslChild(['s_client', '-connect', `127.0.0.1:${at}`, '-tls1_2', '-servername', 'localhost', '-CAfile', m.caPath, '-verify_return_error'], m.dir)
    await waitUntil(() => factory.built.length === 2, 'the TLS 1.2 connection')
    const q = factory.built[1] as Rec
    const info = q.t.tlsInfo
    t.is(info.protocol, 'TLSv1.2')
    rn.send('before\n')
    await q.waitText('before\n')
    rn.send('R\n')
    await waitUntil(() => rn.stderr.includes('RENEGOTIATING'), () => `s_client to try: ${rn.stderr}`)
    const reason = await q.waitLost()
    // rustls answers no_renegotiation; OpenSSL, refused, gives up with handshake_failure.
    t.true(reason instanceof TLSError, String(reason))
    t.is(reason.code, 'ERR_TLS_ALERT')
    t.is(reason.alert, 'handshake_failure')
    t.is(q.t.tlsInfo, info, 'no second handshake changed the session')
    rn.kill()
  })
}

async function rogueCa(m: { rogueCaPath: string }): Promise<Buffer> {
  return fs.readFileSync(m.rogueCaPath)
}

// Serial: RSS is the process's, and both modes' loops are in it.
const serialWithOpenssl = HAVE_OPENSSL ? test.serial : test.skip
serialWithOpenssl(`many slow handshakes stay bounded in memory, and the timeout closes them all (both modes)${HAVE_OPENSSL ? '' : ` (skipped: ${NO_OPENSSL})`}`, async (t) => {
  const m = material.get()
  // The first 200 bytes of a real ClientHello, then nothing: each server session holds a partial
  // handshake message until the timeout.
  const partial = await clientHelloPrefix(m.ca, 200)
  const N = 1000
  for (const mode of MODES) {
    const r = new Reactor({ thread: mode.thread })
    const { port, at, factory } = tlsPort(r, serverTls(m, { handshakeTimeout: 4000 }))
    // Warm up: one full handshake so the first-use allocations are not counted.
    const warm = await nodeTls(at, { ca: m.ca })
    if (warm.ok) warm.socket.destroy()
    global.gc?.()
    const before = rss()
    const fds: number[] = []
    // In batches: with thread: false the accepts run on this thread, between them (a blocking
    // connect past the backlog would wait for ever).
    for (let i = 0; i < N; i++) {
      const fd = sockets.connectTcp('127.0.0.1', at)
      fds.push(fd)
      fs.writeSync(fd, partial) // a blocking write on our own socket: 200 bytes never block on loopback
      if (i % 100 === 99) await waitUntil(() => port.stats().connectionsAccepted >= i + 2, 'the batch accepted')
    }
    await waitUntil(() => port.stats().connectionsAccepted >= N + 1, 'every client accepted')
    await new Promise((resolve) => setTimeout(resolve, 200)) // their bytes read into the sessions
    const grown = rss() - before
    t.log(`${mode.name}: ${N} stalled handshakes: RSS +${(grown / MiB).toFixed(1)} MiB (${Math.round(grown / N)} B each)`)
    t.true(grown < N * 32 * 1024, `under 32 KiB per stalled handshake (${Math.round(grown / N)} B)`)
    await waitUntil(() => port.stats().tlsHandshakeFailures >= N, () => `the timeout to close them (${port.stats().tlsHandshakeFailures})`, 20000)
    t.is(factory.built.length, 0)
    for (const fd of fds) sockets.close(fd)
    await port.stopListening()
    await r.close()
  }
})

/** The first `n` bytes Node's TLS client sends (its ClientHello), captured on a loopback server. */
async function clientHelloPrefix(ca: Buffer, n: number): Promise<Buffer> {
  let captured: Buffer | null = null
  const server = net.createServer((s) => {
    s.once('data', (d) => {
      captured = d
      s.destroy()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ca, servername: 'localhost' })
  c.on('error', () => {})
  await waitUntil(() => captured !== null, 'a ClientHello')
  c.destroy()
  server.close()
  return (captured as unknown as Buffer).subarray(0, n)
}
