// The options of listening ports (`adoptStreamPort`'s fourth argument, `listenProxy`): admission
// limits, PROXY headers to read, and for proxy ports where clients go. Checked here once, with the
// policies of validate.ts, and turned into the binding's `PortOptions` (the core applies them).
import { isIP } from 'node:net'
import { IPv4Address, IPv6Address, UNIXAddress, type Address } from './address'
import { InvalidAddressError, invalidArgType, invalidArgValue, outOfRange } from './errors'
import type { PortOptions as NativePortOptions, UpstreamAddress as NativeUpstream } from './native'
import type { ProxyInfo } from './proxy-info'
import { tlsClientOptions, tlsServerOptions, type TlsClientOptions, type TlsServerOptions } from './tls-options'
import {
  arrayArgument,
  describe,
  integerArgument,
  nativeTimeout,
  objectArgument,
  portArgument,
  shown,
  stringArgument,
  timeoutArgument,
  unixPathArgument,
} from './validate'

/** Admission limits, on any listening port. */
export interface PortLimits {
  /** Connections open at once. At the mark the port stops accepting (clients wait in the kernel's
   *  backlog) until one closes: nothing is accepted and then closed. */
  maxConnections?: number | undefined
  /** Connections open at once from one source: IPv4 addresses cut to `ipv4Prefix` bits (32), IPv6
   *  to `ipv6Prefix` (64). A client over the limit is accepted and closed at once (the backlog cannot
   *  tell sources apart). `tableSize` sources are tracked (4096); one that finds no slot is refused. */
  perSource?:
    | {
        /** Connections open at once from one source (1 or more). */
        max: number
        /** Leading bits of an IPv4 address that make its source, 0..32 (default 32). */
        ipv4Prefix?: number | undefined
        /** Leading bits of an IPv6 address that make its source, 0..128 (default 64). */
        ipv6Prefix?: number | undefined
        /** Sources tracked at once (default 4096). */
        tableSize?: number | undefined
      }
    | undefined
  /** Accepts per second, with bursts of `burst` (default `perSecond`): past it the port pauses. */
  acceptRate?:
    | {
        /** Accepts per second, on average (more than 0). */
        perSecond: number
        /** Accepts allowed at once after a quiet spell (default `perSecond`). */
        burst?: number | undefined
      }
    | undefined
}

/** Reading PROXY protocol headers (from a load balancer in front): the core reads and checks the
 *  header before anything reaches JS or an upstream; one that is missing, malformed, too large, too
 *  slow or from an untrusted source closes the connection and is counted. Never guessed. */
export interface ProxyProtocolOptions {
  /** Versions accepted (default both). */
  versions?: Array<1 | 2> | undefined
  /** Sources allowed to send a header, as address blocks ('10.0.0.0/8', '::1'); default any. */
  trusted?: string[] | undefined
  /** The whole header must arrive within this many ms of the accept (default 3000). */
  timeout?: number | undefined
  /** Bytes a header may take at most (default 536). */
  maxSize?: number | undefined
}

/** `adoptStreamPort`'s options. */
export interface StreamPortOptions extends PortLimits {
  /** Read a PROXY header first: `getPeer()` is then the client it names, and
   *  `transport.proxyInfo` carries it. `true` for the defaults. */
  proxyProtocol?: ProxyProtocolOptions | boolean | undefined
  /** Terminate TLS: each connection's handshake runs in the core (after its PROXY header, if one
   *  is read) before the factory hears of it; a failed one never does (counted in
   *  `port.stats().tlsHandshakeFailures`). `transport.tlsInfo` tells the session's parameters.
   *  Certificates can be replaced later with `port.setSecureContext()`. */
  tls?: TlsServerOptions | undefined
}

/** An upstream of a proxy port: an IP literal and port, or a UNIX path (abstract: "\0name"). */
export type UpstreamAddress =
  | {
      /** An IP literal (no name lookup). */
      host: string
      /** The upstream's port. */
      port: number
    }
  | {
      /** A UNIX socket path (abstract names start with "\0"). */
      path: string
    }

/** What a routing function is told about a client. */
export interface ProxyClient {
  /** The client: the PROXY header's source when one was read, else the connection's peer. */
  address: Address
  /** The PROXY header it began with (null without one). */
  proxy: ProxyInfo | null
}

/** `listenProxy`'s options. */
export interface ProxyPortOptions extends StreamPortOptions {
  /** Where clients go: one upstream, a list (balanced), or a function called with each client that
   *  returns an upstream, or null to refuse it (called in batches, never per connection on a hop). */
  upstream: UpstreamAddress | UpstreamAddress[] | ((client: ProxyClient) => UpstreamAddress | null)
  /** For a list: 'roundRobin' (default) or 'leastConnections'. */
  balance?: 'roundRobin' | 'leastConnections' | undefined
  /** One connect attempt at most this many ms (default 5000). */
  connectTimeout?: number | undefined
  /** Further upstreams of the list tried after a refusal or a timeout (default 2). */
  retries?: number | undefined
  /** No byte either way for this many ms closes both sides (default none). */
  idleTimeout?: number | undefined
  /** Bytes held in the core per direction at most (default 262144). */
  bufferSize?: number | undefined
  /** Send the client's addresses to the upstream first, as a PROXY header (HAProxy's send-proxy). */
  proxyHeader?: 'v1' | 'v2' | undefined
  /** Originate TLS to the upstream (after the connect, before the relay; with `proxyHeader`, the
   *  header goes in the clear before the ClientHello). The name verified is `servername`, else
   *  the upstream's IP address. */
  upstreamTls?: TlsClientOptions | undefined
}

const MAX_U32 = 0xffffffff

/** Checks the limits and PROXY options every listening port takes. */
export function streamPortOptions(options: unknown, what: string): NativePortOptions {
  const o = objectArgument(options, what) as StreamPortOptions
  const out: NativePortOptions = {}
  if (o.maxConnections !== undefined) out.maxConnections = integerArgument(o.maxConnections, `${what}.maxConnections`, 1, MAX_U32)
  if (o.perSource !== undefined) {
    const p = objectArgument(o.perSource, `${what}.perSource`) as NonNullable<PortLimits['perSource']>
    out.perSourceMax = integerArgument(p.max, `${what}.perSource.max`, 1, MAX_U32)
    if (p.ipv4Prefix !== undefined) out.perSourceIpv4Prefix = integerArgument(p.ipv4Prefix, `${what}.perSource.ipv4Prefix`, 0, 32)
    if (p.ipv6Prefix !== undefined) out.perSourceIpv6Prefix = integerArgument(p.ipv6Prefix, `${what}.perSource.ipv6Prefix`, 0, 128)
    if (p.tableSize !== undefined) out.perSourceSlots = integerArgument(p.tableSize, `${what}.perSource.tableSize`, 1, 1 << 20)
  }
  if (o.acceptRate !== undefined) {
    const r = objectArgument(o.acceptRate, `${what}.acceptRate`) as NonNullable<PortLimits['acceptRate']>
    out.acceptRate = positiveFinite(r.perSecond, `${what}.acceptRate.perSecond`)
    if (r.burst !== undefined) out.acceptBurst = positiveFinite(r.burst, `${what}.acceptRate.burst`)
  }
  if (o.proxyProtocol !== undefined && o.proxyProtocol !== false) {
    const p = (o.proxyProtocol === true ? {} : objectArgument(o.proxyProtocol, `${what}.proxyProtocol`)) as ProxyProtocolOptions
    const versions = p.versions === undefined ? [1, 2] : arrayArgument(p.versions, `${what}.proxyProtocol.versions`).map((v) => integerArgument(v, `${what}.proxyProtocol.versions[]`, 1, 2))
    if (versions.length === 0) throw invalidArgValue(`${what}.proxyProtocol.versions must name 1, 2 or both`)
    out.proxyVersions = versions
    if (p.trusted !== undefined) out.proxyTrusted = arrayArgument(p.trusted, `${what}.proxyProtocol.trusted`).map((c) => addressBlock(c, `${what}.proxyProtocol.trusted[]`))
    if (p.timeout !== undefined) out.proxyTimeoutMs = finiteTimeout(p.timeout, `${what}.proxyProtocol.timeout`)
    if (p.maxSize !== undefined) out.proxyMaxSize = integerArgument(p.maxSize, `${what}.proxyProtocol.maxSize`, 16, 65_551)
  }
  if (o.tls !== undefined) out.tls = tlsServerOptions(o.tls, `${what}.tls`)
  return out
}

/** Checks a proxy port's options. A routing function comes back apart (the core asks JS). */
export function proxyPortOptions(options: unknown, what: string): { native: NativePortOptions; route: ProxyPortOptions['upstream'] | null } {
  const o = objectArgument(options, what) as ProxyPortOptions
  const out = streamPortOptions(o, what)
  let route: ProxyPortOptions['upstream'] | null = null
  if (typeof o.upstream === 'function') {
    out.routeByConsumer = true
    route = o.upstream
  } else if (Array.isArray(o.upstream)) {
    if (o.upstream.length === 0) throw invalidArgValue(`${what}.upstream: the list is empty`)
    out.upstreams = o.upstream.map((u, i) => upstreamAddress(u, `${what}.upstream[${i}]`, { unix: true }))
  } else {
    out.upstreams = [upstreamAddress(o.upstream, `${what}.upstream`, { unix: true })]
  }
  if (o.balance !== undefined) {
    if (o.balance !== 'roundRobin' && o.balance !== 'leastConnections') throw invalidArgValue(`${what}.balance must be 'roundRobin' or 'leastConnections', not ${shown(o.balance)}`)
    out.balance = o.balance
  }
  if (o.connectTimeout !== undefined) out.connectTimeoutMs = finiteTimeout(o.connectTimeout, `${what}.connectTimeout`)
  if (o.retries !== undefined) out.retries = integerArgument(o.retries, `${what}.retries`, 0, 64)
  if (o.idleTimeout !== undefined) {
    const idle = timeoutArgument(o.idleTimeout, `${what}.idleTimeout`, { positive: true })
    if (idle !== null) out.idleTimeoutMs = nativeTimeout(idle)
  }
  if (o.bufferSize !== undefined) out.bufferSize = integerArgument(o.bufferSize, `${what}.bufferSize`, 1, 0x7fffffff)
  if (o.proxyHeader !== undefined) {
    if (o.proxyHeader !== 'v1' && o.proxyHeader !== 'v2') throw invalidArgValue(`${what}.proxyHeader must be 'v1' or 'v2', not ${shown(o.proxyHeader)}`)
    out.sendHeader = o.proxyHeader === 'v1' ? 1 : 2
  }
  if (o.upstreamTls !== undefined) out.upstreamTls = tlsClientOptions(o.upstreamTls, `${what}.upstreamTls`)
  return { native: out, route }
}

/** An upstream the core sends to: an IP literal and a port 1..65535, an IP address object, or (for
 *  streams, `unix: true`) a UNIX path. Names are refused (`InvalidAddressError`): the caller resolves
 *  them first, with `dns.lookup`, because the core never blocks on DNS. The one check for every
 *  upstream: `listenProxy`'s and `listenDatagramProxy`'s options and their routing functions' answers. */
export function upstreamAddress(value: unknown, what: string, kinds: { unix: true }): NativeUpstream
export function upstreamAddress(value: unknown, what: string, kinds: { unix: false }): { host: string; port: number }
export function upstreamAddress(value: unknown, what: string, kinds: { unix: boolean }): NativeUpstream {
  if (value instanceof IPv4Address || value instanceof IPv6Address) return { host: value.host.split('%')[0]!, port: value.port }
  if (kinds.unix && value instanceof UNIXAddress && value.name !== null) return { path: value.name }
  const shape = kinds.unix ? '{ host, port } or { path }' : '{ host, port }'
  if (value === null || typeof value !== 'object') throw invalidArgType(`${what} must be ${shape}, not ${describe(value)}`)
  const u = value as { host?: unknown; port?: unknown; path?: unknown }
  if (u.path !== undefined) {
    if (!kinds.unix) throw invalidArgType(`${what} must be ${shape} (an IP upstream), not a UNIX path`)
    return { path: unixPathArgument(u.path, `${what}.path`) }
  }
  const host = stringArgument(u.host, `${what}.host`)
  if (isIP(host) === 0) throw new InvalidAddressError(`${what}.host must be an IP literal (resolve names first, e.g. with dns.lookup), not ${JSON.stringify(host)}`, host)
  const port = portArgument(u.port, `${what}.port`)
  if (port === 0) throw outOfRange(`${what}.port must be in 1..65535, not 0`)
  return { host, port }
}

function addressBlock(value: unknown, what: string): string {
  const text = stringArgument(value, what)
  const [address, prefix, extra] = text.split('/')
  const family = isIP(address)
  const max = family === 4 ? 32 : 128
  if (family === 0 || extra !== undefined || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= max))) {
    throw invalidArgValue(`${what} must be an address or an address block ('10.0.0.0/8', '::1'), not ${JSON.stringify(text)}`)
  }
  return text
}

/** A deadline the core enforces: Infinity is refused here (a connect or a header with no deadline
 *  would let one stalled peer hold a slot for ever). */
function finiteTimeout(value: unknown, what: string): number {
  const ms = timeoutArgument(value, what, { positive: true })
  if (ms === null) throw outOfRange(`${what} must be a finite number of ms (at most ${0x7fffffff}), not ${shown(value)}`)
  return nativeTimeout(ms)
}

function positiveFinite(value: unknown, what: string): number {
  if (typeof value !== 'number') throw invalidArgType(`${what} must be a number, not ${describe(value)}`)
  if (!Number.isFinite(value) || value <= 0) throw outOfRange(`${what} must be a positive finite number, not ${value}`)
  return value
}
