// What a connection's PROXY protocol header said (HAProxy's proxy-protocol.txt), as the core read and
// checked it: records.ts decodes it from the core's PROXY_INFO records. Types and names only.
import type { Address } from './address'

/** The transport a PROXY header announces. */
export type ProxyTransport = 'TCP4' | 'TCP6' | 'UDP4' | 'UDP6' | 'UNIX_STREAM' | 'UNIX_DGRAM' | 'UNSPEC'

/** A type-length-value extension of a PROXY v2 header. */
export interface ProxyTlv {
  /** The TLV's type (0x01 ALPN, 0x02 AUTHORITY, 0x05 UNIQUE_ID, 0x20 SSL, ...). */
  type: number
  /** Its value, as received. */
  value: Buffer
}

/** A PROXY header a connection began with, as the core read and checked it. */
export interface ProxyInfo {
  /** The header's version: 1 (text) or 2 (binary). */
  version: 1 | 2
  /** 'local': a health check or the proxy's own connection; addresses are then null. */
  command: 'proxy' | 'local'
  /** The client's transport, as the header announces it ('UNSPEC' for v1's UNKNOWN). */
  transport: ProxyTransport
  /** The client, as the proxy in front saw it (null for LOCAL or UNKNOWN). */
  source: Address | null
  /** Where the client connected to, as the proxy in front saw it. */
  destination: Address | null
  /** v2 only (empty for v1). */
  tlvs: ProxyTlv[]
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

