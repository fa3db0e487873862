// Interoperability: `openssl s_client` against a TLS port, our connectTCP client against
// `openssl s_server`, `curl` (HTTPS GET) against an http.Server fed SocketStreams from a TLS port,
// and Node's tls on either side; TLS 1.2 and 1.3, ALPN h2 and http/1.1, client certificates.
// Each tool's test is skipped (with the reason in its title) where the tool is missing. Both modes.
import test from 'ava'
import * as crypto from 'node:crypto'
import * as http from 'node:http'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { spawn } from 'node:child_process'
import { Reactor, ServerFactory, type SocketStream } from 'reactor-socket'
import { Child, EchoRec, MODES, Rec, RecFactory, fileTeardown, testIf, waitUntil } from '../helpers.js'
import { HAVE_CURL, HAVE_OPENSSL, NO_OPENSSL, killOpenssl, opensslChild, serverTls, tlsMaterial, tlsPort, withOpenssl } from './tls-helpers.js'

const { reactors, cleanups } = fileTeardown()
const material = tlsMaterial()
test.after.always(killOpenssl)
const withCurl = testIf(HAVE_OPENSSL && HAVE_CURL, HAVE_OPENSSL ? 'curl is not installed' : NO_OPENSSL)

const VARIANTS = [
  { flag: '-tls1_3', alpn: 'h2', protocol: 'TLSv1.3' },
  { flag: '-tls1_2', alpn: 'http/1.1', protocol: 'TLSv1.2' },
] as const

async function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = new Child(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  cleanups.push(() => c.kill())
  return c.wait(30000)
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const v of VARIANTS) {
    withOpenssl(`${tag} openssl s_client (${v.protocol}, ALPN ${v.alpn}, a client certificate) against a TLS port`, async (t) => {
      const m = material.get()
      const { port, at, factory } = tlsPort(r, serverTls(m, { ALPNProtocols: ['h2', 'http/1.1'], requestCert: true, ca: m.ca }), new RecFactory(EchoRec))
      cleanups.push(() => void port.stopListening())
      const c = opensslChild(
        ['s_client', '-connect', `127.0.0.1:${at}`, v.flag, '-alpn', v.alpn, '-servername', 'localhost', '-CAfile', m.caPath, '-verify_return_error', '-cert', m.client.certPath, '-key', m.client.keyPath],
        m.dir,
      )
      await waitUntil(() => factory.built.length === 1, () => `the connection (s_client: ${c.stderr})`)
      const p = factory.built[0] as Rec
      const info = p.t.tlsInfo
      t.is(info.protocol, v.protocol)
      t.is(info.alpnProtocol, v.alpn)
      t.true(info.peerCertificates[0].equals(new crypto.X509Certificate(m.client.cert).raw))
      c.send('hello from openssl\n')
      await waitUntil(() => c.stdout.includes('hello from openssl'), () => `the echo in s_client's output: ${c.stdout}`)
      t.regex(c.stdout, new RegExp(`ALPN protocol: ${v.alpn.replace('/', '\\/')}`))
      t.regex(c.stdout, /Verify return code: 0 \(ok\)/)
      p.t.loseConnection()
      await p.waitLost()
      await c.wait()
    })

    withOpenssl(`${tag} connectTCP with tls against openssl s_server (${v.protocol}, ALPN ${v.alpn}, a client certificate)`, async (t) => {
      const m = material.get()
      const s = opensslChild(
        ['s_server', '-accept', '127.0.0.1:0', '-naccept', '1', '-cert', m.localhost.certPath, '-key', m.localhost.keyPath, '-CAfile', m.caPath, '-rev', v.flag, '-alpn', 'h2,http/1.1', '-Verify', '1', '-verify_return_error'],
        m.dir,
      )
      const line = await s.line('ACCEPT 127.0.0.1:')
      const at = Number(line.split(/\s/)[0])
      const p = (await r.connectTCP('127.0.0.1', at, new RecFactory(Rec), {
        tls: { ca: m.ca, servername: 'localhost', ALPNProtocols: [v.alpn], cert: m.client.cert, key: m.client.key },
      })) as Rec
      const info = p.t.tlsInfo
      t.is(info.protocol, v.protocol)
      t.is(info.alpnProtocol, v.alpn)
      t.true(info.peerCertificates[0].equals(new crypto.X509Certificate(m.localhost.cert).raw))
      p.t.write('hello openssl\n')
      await p.waitText('\n')
      t.is(p.text, 'lssnepo olleh\n', 's_server reversed our line')
      p.t.loseConnection()
      await p.waitLost()
      await s.wait()
      t.regex(s.stderr + s.stdout, new RegExp(`Protocol version: ${v.protocol}`))
      t.regex(s.stderr + s.stdout, /Peer certificate: CN = test client/)
    })
  }

  for (const [label, extra, expectVersion] of [
    ['TLS 1.3, HTTP/1.1', ['--tlsv1.3'], 'TLSv1.3'],
    ['TLS 1.2 only', ['--tlsv1.2', '--tls-max', '1.2'], 'TLSv1.2'],
  ] as const) {
    withCurl(`${tag} curl (${label}) gets a page from an http.Server fed SocketStreams by a TLS port`, async (t) => {
      const m = material.get()
      const server = http.createServer((req, res) => {
        const s = req.socket as unknown as SocketStream
        res.setHeader('x-tls', `${s.getProtocol()} ${s.encrypted} ${s.alpnProtocol}`)
        res.end(`hello curl ${req.url}\n`)
      })
      cleanups.push(() => server.close())
      const { port, at } = tlsPort(r, serverTls(m, { ALPNProtocols: ['http/1.1'] }), ServerFactory.forStreams((s) => server.emit('connection', s)) as any)
      cleanups.push(() => void port.stopListening())
      const out = await run('curl', ['-sS', '-i', '--cacert', m.caPath, '--resolve', `localhost:${at}:127.0.0.1`, ...extra, `https://localhost:${at}/page`])
      t.is(out.code, 0, out.stderr)
      t.regex(out.stdout, /^HTTP\/1\.1 200/)
      t.regex(out.stdout, new RegExp(`x-tls: ${expectVersion} true http/1.1`))
      t.regex(out.stdout, /hello curl \/page/)
    })
  }

  withCurl(`${tag} curl with a client certificate; without one the port refuses it`, async (t) => {
    const m = material.get()
    const server = http.createServer((req, res) => {
      const cert = (req.socket as unknown as SocketStream).getPeerCertificate()
      res.end(`client ${'subject' in cert ? cert.subject.CN : 'none'}\n`)
    })
    cleanups.push(() => server.close())
    const { port, at } = tlsPort(r, serverTls(m, { requestCert: true, ca: m.ca }), ServerFactory.forStreams((s) => server.emit('connection', s)) as any)
    cleanups.push(() => void port.stopListening())
    const url = `https://localhost:${at}/`
    const base = ['-sS', '--cacert', m.caPath, '--resolve', `localhost:${at}:127.0.0.1`]
    const ok = await run('curl', [...base, '--cert', m.client.certPath, '--key', m.client.keyPath, url])
    t.is(ok.code, 0, ok.stderr)
    t.is(ok.stdout, 'client test client\n')
    const refused = await run('curl', [...base, url])
    t.not(refused.code, 0)
    t.regex(refused.stderr, /certificate required|alert|SSL/i)
    await waitUntil(() => port.stats().tlsHandshakeFailures === 1, 'counted')
  })

  withOpenssl(`${tag} Node's tls: our client against a TLS 1.2-only Node server (the other way round: tls-port.spec)`, async (t) => {
    const m = material.get()
    const server = tls.createServer({ cert: m.localhost.cert, key: m.localhost.key, maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }, (s) => s.on('error', () => {}).pipe(s))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => server.close())
    const p = (await r.connectTCP('localhost', (server.address() as net.AddressInfo).port, new RecFactory(Rec), {
      tls: { ca: m.ca, ALPNProtocols: ['http/1.1'] },
    })) as Rec
    t.is(p.t.tlsInfo.protocol, 'TLSv1.2')
    t.is(p.t.tlsInfo.alpnProtocol, 'http/1.1')
    p.t.write('node')
    await p.waitText('node')
    p.t.loseConnection()
    await p.waitLost()
  })
}
