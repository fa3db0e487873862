// examples/https-proxy.js run as a user would: a child process terminating HTTPS in front of an
// http.Server, certificates chosen by SNI, reloaded from disk on SIGUSR2 (new handshakes get the
// new certificate, a keep-alive connection made before goes on with its own; bad files are refused
// and change nothing), drained on SIGTERM. Both reactor modes.
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import type { TLSSocket } from 'node:tls'
import { MODES, child, fileTeardown, waitUntil, within } from '../helpers.js'
import { tlsMaterial, withOpenssl } from './tls-helpers.js'

const { cleanups } = fileTeardown()
const material = tlsMaterial()
const EXAMPLE = path.join(process.cwd(), 'examples', 'https-proxy.js')

function get(port: number, servername: string, ca: Buffer, agent: https.Agent): Promise<{ body: string; fingerprint: string; local: number }> {
  return within(
    new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, servername, ca, agent, path: `/via-${servername}` }, (res) => {
        const socket = res.socket as TLSSocket
        const fingerprint = socket.getPeerCertificate().fingerprint256
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ body, fingerprint, local: socket.localPort ?? -1 }))
      })
      req.on('error', reject)
    }),
    `GET through the proxy (${servername})`,
  )
}

const fingerprintOf = (pem: Buffer) => new crypto.X509Certificate(pem).fingerprint256

for (const mode of MODES) {
  withOpenssl(`[${mode.name}] examples/https-proxy.js: HTTPS terminated in the core, SNI, SIGUSR2 reload, SIGTERM drain`, async (t) => {
    const m = material.get()
    const upstream = http.createServer((req, res) => res.end(`upstream saw ${req.url} (${req.socket.remotePort !== undefined ? 'plain TCP' : '?'})`))
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => upstream.close())
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'https-proxy-test-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const site = { cert: path.join(dir, 'site.pem'), key: path.join(dir, 'site.key') }
    fs.writeFileSync(site.cert, m.localhost.cert)
    fs.writeFileSync(site.key, m.localhost.key)
    const proxy = child(EXAMPLE, [
      '--upstream', `127.0.0.1:${(upstream.address() as net.AddressInfo).port}`,
      '--listen', '127.0.0.1:0', '--cert', site.cert, '--key', site.key,
      '--sni', `a.test=${m.aTest.certPath},${m.aTest.keyPath}`,
      ...(mode.thread ? [] : ['--no-thread']),
    ])
    const { port } = JSON.parse(await proxy.line('READY '))

    const kept = new https.Agent({ keepAlive: true, maxSockets: 1 })
    cleanups.push(() => kept.destroy())
    const first = await get(port, 'localhost', m.ca, kept)
    t.is(first.body, 'upstream saw /via-localhost (plain TCP)')
    t.is(first.fingerprint, fingerprintOf(m.localhost.cert))
    const byName = await get(port, 'a.test', m.ca, new https.Agent())
    t.is(byName.fingerprint, fingerprintOf(m.aTest.cert), 'SNI chose a.test\'s certificate')

    fs.writeFileSync(site.cert, m.localhost2.cert)
    fs.writeFileSync(site.key, m.localhost2.key)
    proxy.proc.kill('SIGUSR2')
    await waitUntil(() => proxy.stdout.includes('RELOADED'), 'the reload')
    const fresh = await get(port, 'localhost', m.ca, new https.Agent())
    t.is(fresh.fingerprint, fingerprintOf(m.localhost2.cert), 'a new handshake got the new certificate')
    const again = await get(port, 'localhost', m.ca, kept)
    t.is(again.local, first.local, 'the keep-alive connection made before the reload goes on')
    t.is(again.fingerprint, fingerprintOf(m.localhost.cert), 'with the certificate it began with')

    fs.writeFileSync(site.key, 'not a key')
    proxy.proc.kill('SIGUSR2')
    await waitUntil(() => proxy.stdout.includes('RELOAD_FAILED'), 'the refused reload')
    t.regex(proxy.stdout, /RELOAD_FAILED .*"code":"ERR_TLS_KEY"/)
    t.is((await get(port, 'localhost', m.ca, new https.Agent())).fingerprint, fingerprintOf(m.localhost2.cert), 'the last good certificates stay')

    kept.destroy()
    proxy.proc.kill('SIGUSR1')
    await waitUntil(() => proxy.stdout.includes('STATS'), 'the stats line')
    const stats = JSON.parse(proxy.stdout.split('STATS ')[1].split('\n')[0])
    t.is(stats.relayed, 4, 'four TLS connections (the keep-alive one carried two requests)')
    t.is(stats.handshakeFailures, 0)
    proxy.proc.kill('SIGTERM')
    const end = await proxy.wait(20000)
    t.is(end.code, 0, end.stderr)
  })
}
