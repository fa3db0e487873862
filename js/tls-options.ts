// TLS options as users write them (the names of Node's `tls.createServer` and `tls.connect` where
// they mean the same), checked once here and turned into the binding's options; the core builds
// and enforces them (crates/core/src/tls). Built contexts are kept per options object, so that a
// reused object costs no second parse and its client session cache makes resumption work.
import { rootCertificates } from 'node:tls'
import { callNative, invalidArgType, invalidArgValue } from './errors'
import { binding } from './native'
import type * as Generated from '../native/binding'
import { arrayArgument, booleanArgument, describe, integerArgument, objectArgument, stringArgument, timeoutArgument } from './validate'

export type { Pem, TlsClientOptions, TlsInfo, TlsServerOptions } from './tls-types'
import type { Pem, TlsClientOptions, TlsServerOptions } from './tls-types'

export type NativeTlsServerOptions = Generated.TlsServerOptions
export type NativeTlsClientOptions = Generated.TlsClientOptions
export type TlsServerContext = Generated.TlsServerContext
export type TlsClientContext = Generated.TlsClientContext

const VERSIONS = ['TLSv1.2', 'TLSv1.3']
/** Past this, a handshake timeout means none (as Node's timers). */
const MAX_TIMEOUT = 0x7fffffff

function pem(value: unknown, what: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value)
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (Array.isArray(value)) return Buffer.concat(value.map((v, i) => withNewline(pem(v, `${what}[${i}]`))))
  throw invalidArgType(`${what} must be PEM text (a string or a Buffer, or a list of them), not ${describe(value)}`)
}

function withNewline(b: Buffer): Buffer {
  return b.length > 0 && b[b.length - 1] !== 0x0a ? Buffer.concat([b, Buffer.from('\n')]) : b
}

function optionalPem(value: unknown, what: string): Buffer | undefined {
  return value === undefined ? undefined : pem(value, what)
}

function version(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined
  const v = stringArgument(value, what)
  if (!VERSIONS.includes(v)) throw invalidArgValue(`${what} must be 'TLSv1.2' or 'TLSv1.3', not ${JSON.stringify(v)}`)
  return v
}

function alpn(value: unknown, what: string): string[] | undefined {
  if (value === undefined) return undefined
  return arrayArgument(value, what).map((p, i) => {
    const name = p instanceof Uint8Array ? Buffer.from(p).toString('latin1') : stringArgument(p, `${what}[${i}]`)
    if (name.length === 0 || name.length > 255) throw invalidArgValue(`${what}[${i}] must be 1 to 255 bytes`)
    return name
  })
}

function handshakeTimeout(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined
  const ms = timeoutArgument(value, what)
  return ms === null || ms === 0 || ms > MAX_TIMEOUT ? 0 : Math.ceil(ms)
}

function cacheSize(value: unknown, what: string): number | undefined {
  return value === undefined ? undefined : integerArgument(value, what, 0, 1 << 24)
}

/** Sets `out[key]` unless `value` is undefined: the binding's option fields are optional, and an
 *  option left out stays out. */
function set<T, K extends keyof T>(out: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) out[key] = value
}

/** Checks a server's TLS options and gives the binding's. */
export function tlsServerOptions(options: unknown, what: string): NativeTlsServerOptions {
  const o = objectArgument(options, what) as TlsServerOptions
  const out: NativeTlsServerOptions = {}
  set(out, 'cert', optionalPem(o.cert, `${what}.cert`))
  set(out, 'key', optionalPem(o.key, `${what}.key`))
  if (o.sni !== undefined) {
    const sni = objectArgument(o.sni, `${what}.sni`) as Record<string, { cert: Pem; key: Pem }>
    out.sni = Object.entries(sni).map(([name, entry]) => {
      const e = objectArgument(entry, `${what}.sni[${JSON.stringify(name)}]`) as { cert: Pem; key: Pem }
      return { names: [name], cert: pem(e.cert, `${what}.sni[${JSON.stringify(name)}].cert`), key: pem(e.key, `${what}.sni[${JSON.stringify(name)}].key`) }
    })
  }
  set(out, 'ca', optionalPem(o.ca, `${what}.ca`))
  const requestCert = o.requestCert === undefined ? false : booleanArgument(o.requestCert, `${what}.requestCert`)
  const reject = o.rejectUnauthorized === undefined ? true : booleanArgument(o.rejectUnauthorized, `${what}.rejectUnauthorized`)
  out.clientAuth = !requestCert ? 'none' : reject ? 'required' : 'optional'
  set(out, 'alpnProtocols', alpn(o.ALPNProtocols, `${what}.ALPNProtocols`))
  set(out, 'minVersion', version(o.minVersion, `${what}.minVersion`))
  set(out, 'maxVersion', version(o.maxVersion, `${what}.maxVersion`))
  if (o.tickets !== undefined) out.tickets = booleanArgument(o.tickets, `${what}.tickets`)
  set(out, 'sessionCacheSize', cacheSize(o.sessionCacheSize, `${what}.sessionCacheSize`))
  set(out, 'handshakeTimeoutMs', handshakeTimeout(o.handshakeTimeout, `${what}.handshakeTimeout`))
  return out
}

/** Checks a client's TLS options and gives the binding's. The default CAs are Node's. */
export function tlsClientOptions(options: unknown, what: string): NativeTlsClientOptions {
  const o = objectArgument(options, what) as TlsClientOptions
  const verify = o.rejectUnauthorized === undefined ? true : booleanArgument(o.rejectUnauthorized, `${what}.rejectUnauthorized`)
  const out: NativeTlsClientOptions = { verify }
  if (verify) out.ca = o.ca === undefined ? defaultCa() : pem(o.ca, `${what}.ca`)
  if (o.servername !== undefined) out.servername = stringArgument(o.servername, `${what}.servername`)
  set(out, 'alpnProtocols', alpn(o.ALPNProtocols, `${what}.ALPNProtocols`))
  set(out, 'cert', optionalPem(o.cert, `${what}.cert`))
  set(out, 'key', optionalPem(o.key, `${what}.key`))
  set(out, 'minVersion', version(o.minVersion, `${what}.minVersion`))
  set(out, 'maxVersion', version(o.maxVersion, `${what}.maxVersion`))
  set(out, 'sessionCacheSize', cacheSize(o.sessionCacheSize, `${what}.sessionCacheSize`))
  set(out, 'handshakeTimeoutMs', handshakeTimeout(o.handshakeTimeout, `${what}.handshakeTimeout`))
  return out
}

let defaultCaPem: Buffer | null = null

function defaultCa(): Buffer {
  defaultCaPem ??= Buffer.from(rootCertificates.join('\n'))
  return defaultCaPem
}

const serverContexts = new WeakMap<object, TlsServerContext>()
const clientContexts = new WeakMap<object, TlsClientContext>()

/** The built server context for `options` (checked and built once per options object). Config
 *  errors throw an Error with code ERR_TLS_CERT, ERR_TLS_KEY, ERR_TLS_KEY_MISMATCH, ERR_TLS_CA,
 *  ERR_TLS_VERSION, ERR_TLS_ALPN, ERR_TLS_SERVERNAME or ERR_TLS_OPTION. */
export function serverContext(options: unknown, what: string): TlsServerContext {
  const cached = typeof options === 'object' && options !== null ? serverContexts.get(options) : undefined
  if (cached !== undefined) return cached
  const native = tlsServerOptions(options, what)
  const context = callNative(() => new binding.TlsServerContext(native))
  serverContexts.set(options as object, context)
  return context
}

/** The built client context for `options` (once per options object: its session cache persists). */
export function clientContext(options: unknown, what: string): TlsClientContext {
  const cached = typeof options === 'object' && options !== null ? clientContexts.get(options) : undefined
  if (cached !== undefined) return cached
  const native = tlsClientOptions(options, what)
  const context = callNative(() => new binding.TlsClientContext(native))
  clientContexts.set(options as object, context)
  return context
}

/** What this machine offers for TLS: `ktls` (the kernel can take TLS records over) and why not. */
export function tlsSupport(): {
  /** The kernel can take TLS records over (kTLS: the TCP "tls" ULP, probed once). */
  ktls: boolean
  /** Why not (empty when it can). */
  ktlsReason: string
} {
  return binding.tlsSupport()
}
