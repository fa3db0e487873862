// Address classes (Twisted's) and the decoder of the core's address records (layout in wire.ts).
import { AddressFamily } from './constants'
import { UnsupportedAddressFamily } from './errors'
import { ADDRESS_RECORD_HEADER } from './wire'

/** 'TCP' for stream sockets, 'UDP' for datagram sockets. */
export type IPAddressType = 'TCP' | 'UDP'

/** An IPv4 address and port (Twisted's IPv4Address). */
export class IPv4Address {
  constructor(
    /** 'TCP' for a stream socket's address, 'UDP' for a datagram socket's. */
    readonly type: IPAddressType,
    /** The address in dotted-quad form, e.g. "127.0.0.1". */
    readonly host: string,
    /** The port number (0 for an unbound socket). */
    readonly port: number,
  ) {}

  /** `IPv4Address(TCP, 127.0.0.1, 8080)`, as Twisted prints it. */
  toString(): string {
    return `IPv4Address(${this.type}, ${this.host}, ${this.port})`
  }
}

/** An IPv6 address and port (Twisted's IPv6Address). */
export class IPv6Address {
  constructor(
    /** 'TCP' for a stream socket's address, 'UDP' for a datagram socket's. */
    readonly type: IPAddressType,
    /** The address, e.g. "::1"; link-local hosts carry `%<interface>`. */
    readonly host: string,
    /** The port number (0 for an unbound socket). */
    readonly port: number,
    /** The IPv6 flow label (sin6_flowinfo), usually 0. */
    readonly flowInfo = 0,
    /** The interface index of a scoped (link-local) address, else 0. */
    readonly scopeID = 0,
  ) {}

  /** `IPv6Address(TCP, ::1, 8080, 0, 0)`, as Twisted prints it. */
  toString(): string {
    return `IPv6Address(${this.type}, ${this.host}, ${this.port}, ${this.flowInfo}, ${this.scopeID})`
  }
}

/** A UNIX socket's address (Twisted's UNIXAddress). */
export class UNIXAddress {
  /** None: a UNIX socket has no host. Declared so that `getHost().host` reads `string | undefined`
   *  on a port whose family is known only at run time (the union of the three classes). */
  declare readonly host?: undefined
  /** None: a UNIX socket has no port (`getHost().port` is `number | undefined` on the union). */
  declare readonly port?: undefined

  constructor(
    /** The socket's path (abstract names start with "\0"), or null for an unnamed socket. */
    readonly name: string | null,
  ) {}

  /** `UNIXAddress("/run/app.sock")`, or `UNIXAddress(null)` for an unnamed socket. */
  toString(): string {
    return `UNIXAddress(${this.name === null ? 'null' : JSON.stringify(this.name)})`
  }
}

/** The address of an IP socket. */
export type IPAddress = IPv4Address | IPv6Address
/** The address of any socket the reactor handles. */
export type Address = IPv4Address | IPv6Address | UNIXAddress

/**
 * The address class of a socket of family `F`: INET → IPv4Address, INET6 → IPv6Address, UNIX →
 * UNIXAddress, and the union of those for a family not known at compile time (`number`, or a union
 * of families).
 */
export type AddressOf<F extends number> = number extends F
  ? Address
  : F extends typeof AddressFamily.INET
    ? IPv4Address
    : F extends typeof AddressFamily.INET6
      ? IPv6Address
      : F extends typeof AddressFamily.UNIX
        ? UNIXAddress
        : never

/** The address class of a datagram socket of family `F` (IPAddress when not known at compile time). */
export type IPAddressOf<F extends number> = Extract<AddressOf<F>, IPAddress>

/** Bytes the record at `offset` takes, header included. */
export function addressRecordLength(record: Buffer, offset: number): number {
  return ADDRESS_RECORD_HEADER + record[offset + 1]
}

/**
 * Decodes the record at `offset`. `ipType` is the type IP addresses get. Decoded addresses are
 * frozen because the datagram path shares one instance between datagrams from the same sender.
 */
export function decodeAddress(record: Buffer, offset: number, ipType: IPAddressType): Address {
  const family = record[offset]
  const hostStart = offset + ADDRESS_RECORD_HEADER
  const hostEnd = hostStart + record[offset + 1]
  switch (family) {
    case AddressFamily.INET:
      return Object.freeze(
        new IPv4Address(ipType, record.toString('latin1', hostStart, hostEnd), record.readUInt16LE(offset + 2)),
      )
    case AddressFamily.INET6:
      return Object.freeze(
        new IPv6Address(
          ipType,
          record.toString('latin1', hostStart, hostEnd),
          record.readUInt16LE(offset + 2),
          record.readUInt32LE(offset + 4),
          record.readUInt32LE(offset + 8),
        ),
      )
    case AddressFamily.UNIX:
      return Object.freeze(new UNIXAddress(hostEnd === hostStart ? null : record.toString('utf8', hostStart, hostEnd)))
    default:
      throw new UnsupportedAddressFamily(family, undefined, `the core reported an address of family ${family}`)
  }
}

/** Decodes a standalone record (localAddress/peerAddress/info), or null when there is none. */
export function decodeRecord(record: Buffer | null, ipType: IPAddressType): Address | null {
  return record === null || record.length < ADDRESS_RECORD_HEADER ? null : decodeAddress(record, 0, ipType)
}

/**
 * Like decodeRecord, for a socket of a known family: a UNIX socket without a record is unnamed (so
 * callers always get an address object for UNIX sockets).
 */
export function decodeSocketAddress(record: Buffer | null, family: number, ipType: IPAddressType): Address | null {
  const address = decodeRecord(record, ipType)
  return address === null && family === AddressFamily.UNIX ? UNNAMED : address
}

const UNNAMED = Object.freeze(new UNIXAddress(null))

/** Senders remembered per port (a power of two: the slot is a hash of the record's bytes). */
const SENDER_SLOTS = 64

/**
 * Decodes datagram senders without allocating for peers seen before: a small table of the last
 * senders (direct-mapped by a hash of the record's bytes) gives the same frozen address object for
 * the same record. Records are compared byte by byte in JS: a record is ~20 bytes, and a native
 * `Buffer.compare` call costs more than the loop.
 */
export class SenderAddressCache {
  private readonly records: Array<Uint8Array | null> = new Array<Uint8Array | null>(SENDER_SLOTS).fill(null)
  private readonly addresses: Array<IPAddress | null> = new Array<IPAddress | null>(SENDER_SLOTS).fill(null)
  /** The slot of the last sender: consecutive datagrams mostly come from one peer. */
  private last = 0

  decode(data: Buffer, offset: number): IPAddress {
    const length = addressRecordLength(data, offset)
    const lastRecord = this.records[this.last]
    if (lastRecord !== null && sameBytes(lastRecord, data, offset, length)) return this.addresses[this.last]!
    const slot = hashBytes(data, offset, length) & (SENDER_SLOTS - 1)
    const record = this.records[slot]
    this.last = slot
    if (record !== null && sameBytes(record, data, offset, length)) return this.addresses[slot]!
    // A datagram socket's sender is an IP address: adoptDatagramPort accepts INET and INET6 only.
    const address = decodeAddress(data, offset, 'UDP') as IPAddress
    // A copy: the batch buffer is the protocol's to keep, and must not be pinned by the cache.
    this.records[slot] = Uint8Array.prototype.slice.call(data, offset, offset + length)
    this.addresses[slot] = address
    return address
  }
}

function sameBytes(record: Uint8Array, data: Buffer, offset: number, length: number): boolean {
  if (record.length !== length) return false
  for (let i = 0; i < length; i++) if (record[i] !== data[offset + i]) return false
  return true
}

/** FNV-1a over the record's bytes. */
function hashBytes(data: Buffer, offset: number, length: number): number {
  let h = 0x811c9dc5
  for (let i = offset; i < offset + length; i++) h = Math.imul(h ^ data[i], 0x01000193)
  return h >>> 0
}
