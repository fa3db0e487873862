// The batches the core hands JS: the only place that walks a batch's records and decodes their
// payloads. A record is [kind, id, a, b] (EVENT_STRIDE u32s; the kinds and what a and b hold are
// listed in wire.ts); payloads are in the batch's data buffer, or in its chunks (large reads).
import { addressRecordLength, decodeAddress, type Address, type IPAddress, type SenderAddressCache } from './address'
import { TLSError } from './errors'
import type { NativeReactor } from './native'
import type { TlsInfo } from './tls-types'
import { transportName, type ProxyInfo, type ProxyTlv } from './proxy-info'
import {
  BATCH_HEADER,
  EV_CONNECTED,
  EV_DATA,
  EV_DATA_CHUNK,
  EV_EOF,
  EV_FDS,
  EV_NONE,
  EVENT_STRIDE,
  RECORDS_OVERFLOW,
} from './wire'

const NO_CHUNKS: Buffer[] = []
/** Records JS's reusable array holds; a batch with more comes as an array of its own. */
const RECORDS_PER_BATCH = 4096

/** How a drain ended (EV_PORT_DRAINED). */
export interface DrainCounts {
  /** Connections that ended by themselves while the port drained. */
  ended: number
  /** Idle connections closed when the drain began. */
  idleClosed: number
  /** Connections still open at the deadline, closed then. */
  closedAtDeadline: number
}

/** Input taken out of a batch for a relay (see `Batch.takeInputAhead`). */
export interface TakenInput {
  /** Bytes per connection id, in order. */
  bytes: Map<number, Buffer[]>
  /** Descriptors received with them: a relay cannot pass them on, so nobody will own them. */
  fds: number[]
}

/** One batch, with a cursor: records before it were dispatched, records from it are still ahead. */
export class Batch {
  /** The position of the first record not yet dispatched. */
  private next: number
  private sawDescriptors = false

  private constructor(
    private readonly events: Uint32Array,
    start: number,
    private readonly end: number,
    private readonly data: Buffer,
    private readonly chunks: Buffer[],
  ) {
    this.next = start
  }

  /** The reusable array `take` copies each batch's header and records into. */
  static recordArray(): Uint32Array {
    return new Uint32Array(BATCH_HEADER + RECORDS_PER_BATCH * EVENT_STRIDE)
  }

  /**
   * Takes the core's next batch, or null when none is pending. `records` is JS's own reusable
   * array: the core copies the header [records, chunks] and the records into it, or says
   * RECORDS_OVERFLOW when they did not fit (then they come as an array of their own).
   */
  static take(native: NativeReactor, records: Uint32Array): Batch | null {
    const data = native.takeBatch(records)
    if (data === null) return null
    const chunks = records[1] > 0 ? native.takeChunks() : NO_CHUNKS
    if (records[0] === RECORDS_OVERFLOW) {
      const events = native.takeOverflowEvents()
      return new Batch(events, 0, events.length, data, chunks)
    }
    return new Batch(records, BATCH_HEADER, BATCH_HEADER + records[0] * EVENT_STRIDE, data, chunks)
  }

  /** Moves the cursor past the next record and returns that record's position; -1 at the end. */
  advance(): number {
    const at = this.next
    if (at >= this.end) return -1
    this.next = at + EVENT_STRIDE
    return at
  }

  // ---- The record at `at` ------------------------------------------------------------------

  kind(at: number): number {
    return this.events[at]
  }

  /** The connection, port or relay the record is about. */
  id(at: number): number {
    return this.events[at + 1]
  }

  /** EV_CLOSED (0: an orderly close), EV_DATAGRAM_ERROR. */
  errno(at: number): number {
    return this.events[at + 2]
  }

  /** EV_ACCEPT: the id of the accepted connection. */
  acceptedId(at: number): number {
    return this.events[at + 2]
  }

  /** EV_DATA, EV_DATA_CHUNK: the bytes received (views: the core never reuses a batch's buffers). */
  bytes(at: number): Buffer {
    const length = this.events[at + 3]
    if (this.events[at] === EV_DATA_CHUNK) return this.chunks[this.events[at + 2]].subarray(0, length)
    const offset = this.events[at + 2]
    return this.data.subarray(offset, offset + length)
  }

  /** Whether any EV_FDS record was decoded: then JS owns descriptors from this batch, and says so
   *  to the core once the batch is dispatched (`fdsSettled`). */
  get carriedDescriptors(): boolean {
    return this.sawDescriptors
  }

  /** EV_FDS: the descriptor numbers (u32 LE at `a` in data, `b` of them). */
  fds(at: number): number[] {
    this.sawDescriptors = true
    const offset = this.events[at + 2]
    const fds = new Array<number>(this.events[at + 3])
    for (let k = 0; k < fds.length; k++) fds[k] = this.data.readUInt32LE(offset + 4 * k)
    return fds
  }

  /** EV_RELAY_ENDED: bytes moved a→b and b→a (two u64 LE at `a` in data). */
  relayCounts(at: number): [aToB: number, bToA: number] {
    const offset = this.events[at + 2]
    return [Number(this.data.readBigUInt64LE(offset)), Number(this.data.readBigUInt64LE(offset + 8))]
  }

  /**
   * EV_ACCEPT, EV_CONNECTED: the peer's address, decoded when asked (a record of a family this
   * layer does not know throws, and the receiver decides what that costs the connection).
   */
  peer(at: number): () => Address {
    const offset = this.events[at] === EV_CONNECTED ? this.events[at + 2] : this.events[at + 3]
    return () => decodeAddress(this.data, offset, 'TCP')
  }

  /** EV_ROUTE: the client (the PROXY header's source when there was one), decoded when asked. */
  routeClient(at: number): () => Address {
    const offset = this.events[at + 2]
    return () => decodeAddress(this.data, offset, 'TCP')
  }

  /** EV_ROUTE: the proxy port the session belongs to. */
  routePort(at: number): number {
    return this.events[at + 3]
  }

  /** EV_PORT_DRAINED: sessions that ended by themselves, idle ones closed at the start, the rest
   *  closed at the deadline (three u64 LE at `a`). */
  drainCounts(at: number): DrainCounts {
    const offset = this.events[at + 2]
    const n = (k: number) => Number(this.data.readBigUInt64LE(offset + 8 * k))
    return { ended: n(0), idleClosed: n(1), closedAtDeadline: n(2) }
  }

  /**
   * EV_PROXY_INFO: the PROXY header a connection began with. Payload (crates/core wire
   * `push_proxy_info`): u8 version, u8 command, u8 transport (v2 byte), then source and
   * destination as u16 LE length + address record (0: none), then the TLVs in v2 form (u8 type,
   * u16 BE length, value) to the end.
   */
  proxyInfo(at: number): ProxyInfo {
    let p = this.events[at + 2]
    const end = p + this.events[at + 3]
    const d = this.data
    const version = d[p] === 1 ? 1 : 2
    const command = d[p + 1] === 1 ? 'proxy' : 'local'
    const transport = transportName(d[p + 2])
    const type = transport === 'UDP4' || transport === 'UDP6' ? 'UDP' : 'TCP'
    p += 3
    const endpoint = (): Address | null => {
      const length = d.readUInt16LE(p)
      const address = length === 0 ? null : decodeAddress(d, p + 2, type)
      p += 2 + length
      return address
    }
    const source = endpoint()
    const destination = endpoint()
    const tlvs: ProxyTlv[] = []
    while (p + 3 <= end) {
      const length = d.readUInt16BE(p + 1)
      tlvs.push({ type: d[p], value: Buffer.from(d.subarray(p + 3, Math.min(p + 3 + length, end))) })
      p += 3 + length
    }
    return { version, command, transport, source, destination, tlvs }
  }

  /**
   * EV_TLS_READY: a session's parameters. Payload (crates/core wire `push_tls_info`): u8 flags
   * (bit 0 resumed), then protocol, cipher, key exchange group, ALPN protocol and server name as
   * u8 length + bytes (0: none), then u16 LE count of certificates, each u32 LE length + DER.
   */
  tlsInfo(at: number): TlsInfo {
    let p = this.events[at + 2]
    const d = this.data
    const resumed = (d[p] & 1) !== 0
    p += 1
    const text = (): string | null => {
      const n = d[p]
      const value = n === 0 ? null : d.toString('latin1', p + 1, p + 1 + n)
      p += 1 + n
      return value
    }
    const protocol = text() ?? ''
    const cipher = text() ?? ''
    const keyExchangeGroup = text()
    const alpnProtocol = text()
    const servername = text()
    const count = d.readUInt16LE(p)
    p += 2
    const peerCertificates: Buffer[] = []
    for (let i = 0; i < count; i++) {
      const n = d.readUInt32LE(p)
      peerCertificates.push(Buffer.from(d.subarray(p + 4, p + 4 + n)))
      p += 4 + n
    }
    return { protocol, cipher, keyExchangeGroup, alpnProtocol, servername, peerCertificates, resumed }
  }

  /** EV_TLS_ERROR: the failure (`push_tls_error`: code and alert as u8 length + ASCII, u8 1 when the
   *  peer sent the alert, then the message as u16 LE length + UTF-8). */
  tlsError(at: number): TLSError {
    let p = this.events[at + 2]
    const d = this.data
    const text = (): string => {
      const n = d[p]
      const value = d.toString('latin1', p + 1, p + 1 + n)
      p += 1 + n
      return value
    }
    const code = text()
    const alert = text()
    const received = d[p] === 1
    const length = d.readUInt16LE(p + 1)
    const message = d.toString('utf8', p + 3, p + 3 + length)
    return new TLSError(code, message, alert === '' ? null : alert, received)
  }

  /** EV_DATAGRAM: the sender, decoded through the port's cache (an IP address: datagram ports are
   *  INET or INET6). */
  sender(at: number, cache: SenderAddressCache): IPAddress {
    return cache.decode(this.data, this.events[at + 2])
  }

  /** EV_DATAGRAM: the payload, right after the sender's address record. */
  datagram(at: number): Buffer {
    const start = this.events[at + 2] + addressRecordLength(this.data, this.events[at + 2])
    return this.data.subarray(start, start + this.events[at + 3])
  }

  /** EV_DATAGRAM_ROUTE: the waiting client's token, its address, and the datagram it sent (a view). */
  datagramRoute(at: number): { token: number; client: IPAddress; datagram: Buffer } {
    const offset = this.events[at + 2]
    const record = offset + 4
    const start = record + addressRecordLength(this.data, record)
    return {
      token: this.data.readUInt32LE(offset),
      client: decodeAddress(this.data, record, 'UDP') as IPAddress,
      datagram: this.data.subarray(start, start + this.events[at + 3]),
    }
  }

  // ---- Records still ahead of the cursor ---------------------------------------------------

  /** Records of `kind` about `id` still ahead. */
  countAhead(kind: number, id: number): number {
    let n = 0
    for (let i = this.next; i < this.end; i += EVENT_STRIDE) if (this.events[i] === kind && this.events[i + 1] === id) n++
    return n
  }

  /** The descriptors of the EV_FDS records still ahead (the batch will not be dispatched further:
   *  the reactor closed), for the caller to close. */
  descriptorsAhead(): number[] {
    const fds: number[] = []
    for (let i = this.next; i < this.end; i += EVENT_STRIDE) if (this.events[i] === EV_FDS) fds.push(...this.fds(i))
    return fds
  }

  /**
   * Takes out the input records (data, descriptors, EOF) of `ids` still ahead, blanking them
   * (EV_NONE): a relay sends those bytes on itself, in order, and reads the EOF itself.
   */
  takeInputAhead(ids: number[]): TakenInput {
    const taken: TakenInput = { bytes: new Map(), fds: [] }
    for (let i = this.next; i < this.end; i += EVENT_STRIDE) {
      const kind = this.events[i]
      const id = this.events[i + 1]
      if ((kind !== EV_DATA && kind !== EV_DATA_CHUNK && kind !== EV_EOF && kind !== EV_FDS) || !ids.includes(id)) continue
      if (kind === EV_FDS) {
        taken.fds.push(...this.fds(i))
      } else if (kind !== EV_EOF) {
        const list = taken.bytes.get(id)
        if (list === undefined) taken.bytes.set(id, [this.bytes(i)])
        else list.push(this.bytes(i))
      }
      this.events[i] = EV_NONE
    }
    return taken
  }
}
