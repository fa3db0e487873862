// UDP segmentation offloads from outside the package, with python3 (Node cannot set them): a
// sender that cuts one buffer into datagrams with UDP_SEGMENT (GSO), and a UDP_GRO receiver that
// reports each read whole, with its segment size.
import { python } from './tools.js'

const SOL_UDP = 17
const UDP_SEGMENT = 103
const UDP_GRO = 104

/**
 * Sends `datagrams` from the UDP socket `fd` to 127.0.0.1:`port` as one send with UDP_SEGMENT =
 * `segment` (every datagram `segment` bytes but the last, which may be shorter).
 */
export async function sendSegmented(fd: number, port: number, segment: number, datagrams: Buffer[]): Promise<void> {
  const code = [
    'import socket',
    's = socket.socket(fileno=3)',
    `s.setsockopt(${SOL_UDP}, ${UDP_SEGMENT}, ${segment})`,
    `s.sendto(bytes.fromhex("${Buffer.concat(datagrams).toString('hex')}"), ("127.0.0.1", ${port}))`,
    `s.setsockopt(${SOL_UDP}, ${UDP_SEGMENT}, 0)`,
    's.detach()',
  ].join('\n')
  await python(code, fd)
}

/**
 * Reads from the UDP socket `fd` (which has UDP_GRO on) until `datagrams` datagrams' worth arrived
 * (bounded: 10 s): each read's bytes and its UDP_GRO segment size (0: a single datagram).
 */
export async function receiveWithGro(fd: number, datagrams: number): Promise<Array<{ data: Buffer; segment: number }>> {
  const code = [
    'import socket, struct, json',
    's = socket.socket(fileno=3)',
    's.settimeout(10)',
    'out, n = [], 0',
    `while n < ${datagrams}:`,
    '    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(4))',
    `    seg = next((struct.unpack("i", d[:4])[0] for (l, t, d) in anc if l == ${SOL_UDP} and t == ${UDP_GRO}), 0)`,
    '    n += max(1, -(-len(data) // seg)) if seg else 1',
    '    out.append({"hex": data.hex(), "segment": seg})',
    'print(json.dumps(out))',
    's.detach()',
  ].join('\n')
  const reads: Array<{ hex: string; segment: number }> = JSON.parse(await python(code, fd))
  return reads.map((r) => ({ data: Buffer.from(r.hex, 'hex'), segment: r.segment }))
}

/** `count` datagrams of `size` bytes (the last `lastSize`), each with bytes of its own. */
export function distinctDatagrams(count: number, size: number, lastSize = size): Buffer[] {
  return Array.from({ length: count }, (_, k) =>
    Buffer.from(Array.from({ length: k === count - 1 ? lastSize : size }, (_, i) => (k * 7 + i + 1) & 0xff)),
  )
}
