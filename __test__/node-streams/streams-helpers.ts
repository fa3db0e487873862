// Helpers for the SocketStream tests (streams-*.spec.ts): streams over adopted connections and
// ports, hashing, and a test certificate made with openssl.
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFile } from 'node:child_process'
import { ServerFactory, type IProtocolFactory, type Reactor, type SocketStream, type SocketStreamOptions } from 'reactor-socket'
import { adoptablePair, closeFd, hasCommand, listenerOf, within, type PairKind, type Peer } from '../helpers.js'

export { MiB } from '../helpers.js'

export const sha256 = (data: Buffer | Buffer[]) => {
  const h = crypto.createHash('sha256')
  for (const b of Array.isArray(data) ? data : [data]) h.update(b)
  return h.digest('hex')
}

/** Deterministic pseudo-random bytes (so a corrupted or reordered byte changes the hash). */
export function patternBytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** An adopted connection wrapped in a SocketStream, and a Node socket at the other end. */
export async function streamPair(
  r: Reactor,
  kind: PairKind,
  cleanups: (() => void)[],
  options: SocketStreamOptions = {},
  peerOpts: { allowHalfOpen?: boolean } = {},
): Promise<{ stream: SocketStream; peer: Peer; serverPort?: number | undefined }> {
  const x = await adoptablePair(kind, peerOpts)
  cleanups.push(x.cleanup)
  let stream: SocketStream | undefined
  const protocol = r.adoptStreamConnection(x.fd, x.family, ServerFactory.forStreams((s) => (stream = s), options))
  closeFd(x.fd)
  if (protocol === undefined || stream === undefined || protocol.stream !== stream) {
    throw new Error('adoptStreamConnection did not give the stream to the listener')
  }
  cleanups.push(() => stream!.destroy())
  return { stream, peer: x.peer, serverPort: x.serverPort }
}

/** An adopted listening port whose connections become SocketStreams handed to `onStream`. */
export function streamPort(
  r: Reactor,
  kind: PairKind,
  onStream: (stream: SocketStream) => void,
  options?: SocketStreamOptions,
) {
  return streamPortWith(r, ServerFactory.forStreams(onStream, options), kind)
}

/** An adopted listening port with a given factory. */
export function streamPortWith(r: Reactor, factory: IProtocolFactory, kind: PairKind = 'v4') {
  const l = listenerOf(kind)
  const port = r.adoptStreamPort(l.fd, l.family, factory)
  closeFd(l.fd)
  const host = port.getHost() as { host?: string; port?: number }
  return { port, host: host.host, portNumber: host.port, path: l.path, connect: l.connect }
}

/** Waits for an event (bounded). */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, what = event, ms = 10000): Promise<T> {
  return within(
    new Promise<T>((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args[0] as T))),
    what,
    ms,
  )
}

/** Reads a readable to its end (bounded) and returns what it gave. */
export function readAll(readable: NodeJS.ReadableStream, what = 'the end of the stream', ms = 20000): Promise<Buffer> {
  const chunks: Buffer[] = []
  return within(
    new Promise<Buffer>((resolve, reject) => {
      readable.on('data', (d: Buffer) => chunks.push(d))
      readable.once('end', () => resolve(Buffer.concat(chunks)))
      readable.once('error', reject)
    }),
    what,
    ms,
  )
}

// ---------------------------------------------------------------------------------------------
// A certificate made at test time

export const HAVE_OPENSSL = hasCommand('openssl')

export interface TestCert {
  dir: string
  keyPath: string
  certPath: string
  key: Buffer
  cert: Buffer
}

/** A self-signed certificate for localhost / 127.0.0.1 / ::1, made with openssl in a temp dir. */
export async function makeCert(): Promise<TestCert> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-cert-'))
  const keyPath = path.join(dir, 'key.pem')
  const certPath = path.join(dir, 'cert.pem')
  const args = [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
  ]
  await within(
    new Promise<void>((resolve, reject) =>
      execFile('openssl', args, (err, _out, stderr) => (err ? reject(new Error(`openssl: ${stderr || err}`)) : resolve())),
    ),
    'openssl',
    20000,
  )
  return { dir, keyPath, certPath, key: fs.readFileSync(keyPath), cert: fs.readFileSync(certPath) }
}

export function removeCert(cert: TestCert | undefined) {
  if (cert) fs.rmSync(cert.dir, { recursive: true, force: true })
}
