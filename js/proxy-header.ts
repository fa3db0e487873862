// PROXY protocol headers (HAProxy's proxy-protocol.txt): what a connection received (`ProxyInfo`,
// decoded by records.ts from the core's PROXY_INFO records) and what JS asks the core to send
// (`ProxyHeaderOptions`, encoded by the core's codec through the binding). The protocol is parsed
// and encoded in the core only; this file holds the shapes and the checks of the options.
import { IPv4Address, IPv6Address, UNIXAddress, type Address } from './address'
import { callNative } from './errors'
import { binding } from './native'
import { arrayArgument, bytesArgument, describe, integerArgument, objectArgument, portArgument, stringArgument } from './validate'
import { invalidArgType, invalidArgValue } from './errors'

/** The transport a PROXY header announces. */
export type ProxyTransport = 'TCP4' | 'TCP6' | 'UDP4' | 'UDP6' | 'UNIX_STREAM' | 'UNIX_DGRAM' | 'UNSPEC'

export interface ProxyTlv {
  /** The TLV's type (0x01 ALPN, 0x02 AUTHORITY, 0x05 UNIQUE_ID, 0x20 SSL, ...). */
  type: number
  value: Buffer
}

/** A PROXY header a connection began with, as the core read and checked it. */
export interface ProxyInfo {
  version: 1 | 2
  /** 'local': a health check or the proxy's own connection; addresses are then null. */
  command: 'proxy' | 'local'
  transport: ProxyTransport
  /** The client, as the proxy in front saw it (null for LOCAL or UNKNOWN). */
  source: Address | null
  /** Where the client connected to, as the proxy in front saw it. */
  destination: Address | null
  /** v2 only (empty for v1). */
  tlvs: ProxyTlv[]
}

/** An endpoint for a header to send: an IP address and port, or a UNIX path (v2 only). */
export type ProxyEndpoint = { host: string; port: number } | { path: string } | Address

/** A PROXY header to send first (`connectTCP`, `relay`). */
export interface ProxyHeaderOptions {
  version: 1 | 2
  /** 'proxy' (default): carries `source` and `destination`; 'local': carries none. */
  command?: 'proxy' | 'local'
  source?: ProxyEndpoint
  destination?: ProxyEndpoint
  /** v2 only. */
  tlvs?: Array<{ type: number; value: Uint8Array | string }>
}

const TRANSPORTS: Record<number, ProxyTransport> = {
  0x00: 'UNSPEC',
  0x11: 'TCP4',
  0x12: 'UDP4',
  0x21: 'TCP6',
  0x22: 'UDP6',
  0x31: 'UNIX_STREAM',
  0x32: 'UNIX_DGRAM',
}

/** The name of a v2 family/protocol byte (the PROXY_INFO payload carries the byte). */
export function transportName(byte: number): ProxyTransport {
  return TRANSPORTS[byte] ?? 'UNSPEC'
}

/** Checks `options` and has the core encode the header: the bytes to send first. */
export function encodeProxyHeader(options: unknown, what: string): Buffer {
  const o = objectArgument(options, what) as Partial<ProxyHeaderOptions>
  const version = integerArgument(o.version, `${what}.version`, 1, 2)
  const command = o.command ?? 'proxy'
  if (command !== 'proxy' && command !== 'local') throw invalidArgValue(`${what}.command must be 'proxy' or 'local', not ${String(command)}`)
  const local = command === 'local'
  const source = local ? null : endpoint(o.source, `${what}.source`)
  const destination = local ? null : endpoint(o.destination, `${what}.destination`)
  const tlvs = o.tlvs === undefined ? undefined : arrayArgument(o.tlvs, `${what}.tlvs`).map((t, i) => {
    const tlv = objectArgument(t, `${what}.tlvs[${i}]`) as { type?: unknown; value?: unknown }
    return { type: integerArgument(tlv.type, `${what}.tlvs[${i}].type`, 0, 255), value: Buffer.from(bytesArgument(tlv.value, `${what}.tlvs[${i}].value`)) }
  })
  if (version === 1 && tlvs !== undefined && tlvs.length > 0) throw invalidArgValue(`${what}: TLVs need version 2`)
  return callNative(() =>
    binding.encodeProxyHeader(version, local, source?.host, source?.port, destination?.host, destination?.port, tlvs),
  )
}

/** An endpoint as the binding takes it: host and port, or a UNIX path in `host` (port ignored). */
function endpoint(value: unknown, what: string): { host: string; port: number } {
  if (value instanceof IPv4Address || value instanceof IPv6Address) return { host: value.host.split('%')[0], port: value.port }
  if (value instanceof UNIXAddress) {
    if (value.name === null) throw invalidArgValue(`${what}: an unnamed UNIX socket has no path to send`)
    return { host: value.name, port: 0 }
  }
  if (value === null || typeof value !== 'object') throw invalidArgType(`${what} must be { host, port }, { path } or an address, not ${describe(value)}`)
  const e = value as { host?: unknown; port?: unknown; path?: unknown }
  if (e.path !== undefined) return { host: stringArgument(e.path, `${what}.path`), port: 0 }
  return { host: stringArgument(e.host, `${what}.host`), port: portArgument(e.port, `${what}.port`) }
}
