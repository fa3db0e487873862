// PROXY protocol headers to send (`ProxyHeaderOptions`: connectTCP, relay), checked here and encoded
// by the core's codec through the binding. What a connection received is `ProxyInfo` (proxy-info.ts).
import { IPv4Address, IPv6Address, UNIXAddress, type Address } from './address'
export type { ProxyInfo, ProxyTlv, ProxyTransport } from './proxy-info'
import { callNative } from './errors'
import { binding } from './native'
import { arrayArgument, bytesArgument, describe, integerArgument, objectArgument, portArgument, shown, stringArgument } from './validate'
import { invalidArgType, invalidArgValue } from './errors'

/** An endpoint for a header to send: an IP address and port, or a UNIX path (v2 only). */
export type ProxyEndpoint =
  | {
      /** An IP literal. */
      host: string
      /** A port, 0..65535. */
      port: number
    }
  | {
      /** A UNIX socket path (version 2 only). */
      path: string
    }
  | Address

/** A PROXY header to send first (`connectTCP`, `relay`). */
export interface ProxyHeaderOptions {
  /** 1: the text header; 2: the binary one. */
  version: 1 | 2
  /** 'proxy' (default): carries `source` and `destination`; 'local': carries none. */
  command?: 'proxy' | 'local' | undefined
  /** The client the header announces (required with 'proxy'). */
  source?: ProxyEndpoint | undefined
  /** Where that client connected to (required with 'proxy'). */
  destination?: ProxyEndpoint | undefined
  /** Type-length-value extensions (v2 only). */
  tlvs?:
    | Array<{
        /** The TLV's type, 0..255 (0x01 ALPN, 0x02 AUTHORITY, 0x05 UNIQUE_ID, ...). */
        type: number
        /** Its value (a string is sent as UTF-8). */
        value: Uint8Array | string
      }>
    | undefined
}

/** Checks `options` and has the core encode the header: the bytes to send first. */
export function encodeProxyHeader(options: unknown, what: string): Buffer {
  const o = objectArgument(options, what) as Partial<ProxyHeaderOptions>
  const version = integerArgument(o.version, `${what}.version`, 1, 2)
  const command = o.command ?? 'proxy'
  if (command !== 'proxy' && command !== 'local') throw invalidArgValue(`${what}.command must be 'proxy' or 'local', not ${shown(command)}`)
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
