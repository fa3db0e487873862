// What the TLS spec files share: the certificates (made once per file with openssl), TLS ports
// with recording protocols, Node TLS clients that report how their handshake ended, and child
// processes for openssl and curl.
import test from 'ava'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { spawn } from 'node:child_process'
import { AddressFamily, sockets, type IPv4Address, type ListeningPort, type Reactor, type StreamPortOptions, type TlsServerOptions } from 'reactor-socket'
import { Child, RecFactory, testIf, within } from '../helpers.js'
import { HAVE_OPENSSL, NO_OPENSSL, makeTlsMaterial, removeTlsMaterial, type TlsMaterial } from '../helpers/tls-certs.js'

export { HAVE_OPENSSL, HAVE_CURL, NO_OPENSSL } from '../helpers/tls-certs.js'
export type { TlsMaterial } from '../helpers/tls-certs.js'

/** `test` where openssl can make certificates, else skipped with the reason in the title. */
export const withOpenssl = testIf(HAVE_OPENSSL, NO_OPENSSL)

/** The file's certificates: made before its tests, removed after. */
export function tlsMaterial(): { get(): TlsMaterial } {
  let m: TlsMaterial | undefined
  test.before(async () => {
    if (HAVE_OPENSSL) m = await makeTlsMaterial()
  })
  test.after.always(() => removeTlsMaterial(m))
  return {
    get() {
      if (m === undefined) throw new Error('no TLS material (openssl missing?)')
      return m
    },
  }
}

/** The server options most tests use: `localhost`'s certificate. */
export function serverTls(m: TlsMaterial, extra: TlsServerOptions = {}): TlsServerOptions {
  return { cert: m.localhost.cert, key: m.localhost.key, ...extra }
}

/** A TLS port on 127.0.0.1 whose protocols are `factory`'s (echoing recorders by default). */
export function tlsPort(
  r: Reactor,
  tlsOptions: TlsServerOptions,
  factory: RecFactory = new RecFactory(),
  extra: StreamPortOptions = {},
): { port: ListeningPort; at: number; factory: RecFactory } {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  try {
    const port = r.adoptStreamPort(fd, AddressFamily.INET, factory, { ...extra, tls: tlsOptions })
    return { port, at: (port.getHost() as IPv4Address).port, factory }
  } finally {
    sockets.close(fd)
  }
}

/** How a Node TLS client's attempt ended. */
export type Attempt = { ok: true; socket: tls.TLSSocket } | { ok: false; error: Error & { code?: string } }

/** A Node TLS client: resolves once its handshake succeeded or failed (bounded). */
export function nodeTls(port: number, options: tls.ConnectionOptions = {}): Promise<Attempt> {
  return within(
    new Promise<Attempt>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...options })
      socket.once('secureConnect', () => resolve({ ok: true, socket }))
      socket.once('error', (error) => resolve({ ok: false, error }))
      socket.once('close', () => resolve({ ok: false, error: Object.assign(new Error('closed before the handshake'), { code: 'ECONNRESET' }) }))
    }),
    'the Node TLS client handshake',
    15000,
  )
}

/** Reads from a Node socket until `n` bytes came (bounded). */
export function readBytes(s: net.Socket, n: number, what = `${n} bytes`): Promise<Buffer> {
  const chunks: Buffer[] = []
  let have = 0
  return within(
    new Promise<Buffer>((resolve, reject) => {
      const onData = (d: Buffer) => {
        chunks.push(d)
        have += d.length
        if (have >= n) {
          s.off('data', onData)
          resolve(Buffer.concat(chunks))
        }
      }
      s.on('data', onData)
      s.once('error', reject)
      s.once('end', () => resolve(Buffer.concat(chunks)))
    }),
    what,
    15000,
  )
}

/** Waits for a Node socket to close; says whether it ended cleanly (its 'end' came first). */
export function closed(s: net.Socket): Promise<{ ended: boolean; error?: Error | undefined }> {
  let ended = false
  let error: Error | undefined
  s.on('end', () => (ended = true))
  s.on('error', (e) => (error = e))
  s.resume()
  return within(new Promise((resolve) => s.once('close', () => resolve({ ended, error }))), 'the socket to close', 15000)
}

/** An openssl child (s_client or s_server) with its output collected, killed at the end of the file. */
const opened: Child[] = []
export function opensslChild(args: string[], cwd: string): Child {
  const c = new Child(spawn('openssl', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] }))
  opened.push(c)
  return c
}
export function killOpenssl(): void {
  for (const c of opened) c.kill()
}
