// UDP segmentation offloads on loopback. A port whose socket has UDP_GRO on gets a GSO sender's
// datagrams as one coalesced buffer from the kernel; its protocol must still see each datagram,
// with its own length, bytes and sender. Datagrams written while a batch is handled leave with
// UDP_SEGMENT where they can: a plain receiver still gets each datagram, a GRO receiver one buffer.
import test from 'ava'
import dgram from 'node:dgram'
import { Reactor, AddressFamily, DatagramProtocol, IPv4Address, sockets } from 'reactor-socket'
import {
  MODES,
  HAS_PYTHON,
  testIf,
  fileTeardown,
  track,
  closeFd,
  bindUdp4,
  portOf,
  waitUntil,
  sendSegmented,
  receiveWithGro,
  distinctDatagrams,
} from '../helpers.js'

const { reactors } = fileTeardown()
const pythonTest = testIf(HAS_PYTHON, 'python3 is needed for a UDP_SEGMENT sender and a UDP_GRO receiver')

/** Keeps a copy of every datagram with its sender. */
class Collector extends DatagramProtocol {
  got: Array<{ data: Buffer; addr: IPv4Address }> = []
  datagramReceived(data: Buffer, addr: IPv4Address) {
    this.got.push({ data: Buffer.from(data), addr })
  }
}

function groPort(r: Reactor, maxPacketSize?: number) {
  const fd = track(sockets.bindUdp({ host: '127.0.0.1', port: 0, gro: true }))
  const port = portOf(fd)
  const protocol = new Collector()
  const transport = r.adoptDatagramPort(fd, AddressFamily.INET, protocol, maxPacketSize)
  closeFd(fd) // the reactor keeps its duplicate
  return { port, protocol, transport }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  pythonTest(`${tag} a UDP_GRO port gets a GSO sender's coalesced buffer as its datagrams, each with its length and sender`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const { port, protocol, transport } = groPort(r)
    const sender = bindUdp4()
    const senderPort = portOf(sender)

    const ten = distinctDatagrams(10, 64)
    await sendSegmented(sender, port, 64, ten)
    await waitUntil(() => protocol.got.length >= 10, 'ten datagrams')
    // A shorter last segment, and a second train right after.
    const three = distinctDatagrams(3, 64, 22)
    await sendSegmented(sender, port, 64, three)
    await waitUntil(() => protocol.got.length >= 13, 'three more datagrams')

    t.deepEqual(protocol.got.map((d) => d.data.toString('hex')), [...ten, ...three].map((d) => d.toString('hex')))
    t.deepEqual(protocol.got.map((d) => d.data.length), [...Array(12).fill(64), 22])
    for (const { addr } of protocol.got) {
      t.true(addr instanceof IPv4Address)
      t.deepEqual([addr.type, addr.host, addr.port], ['UDP', '127.0.0.1', senderPort])
    }
    // Datagrams from one sender share one frozen address object.
    t.is(new Set(protocol.got.map((d) => d.addr)).size, 1)
    t.is(transport.droppedDatagrams, 0)
    closeFd(sender)
    await transport.stopListening()
    await r.close()
  })

  pythonTest(`${tag} maxPacketSize truncates each datagram of a coalesced buffer on its own`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const { port, protocol, transport } = groPort(r, 40)
    const sender = bindUdp4()
    const sent = distinctDatagrams(3, 64, 30)
    await sendSegmented(sender, port, 64, sent)
    await waitUntil(() => protocol.got.length >= 3, 'three datagrams')
    t.deepEqual(
      protocol.got.map((d) => d.data.toString('hex')),
      [sent[0].subarray(0, 40), sent[1].subarray(0, 40), sent[2]].map((d) => d.toString('hex')),
    )
    closeFd(sender)
    await transport.stopListening()
    await r.close()
  })

  pythonTest(`${tag} datagrams written during a batch leave with GSO: a plain receiver gets each, a GRO receiver one buffer`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const plain = dgram.createSocket('udp4')
    t.teardown(() => plain.close())
    await new Promise<void>((resolve) => plain.bind(0, '127.0.0.1', resolve))
    const plainGot: Buffer[] = []
    plain.on('message', (msg) => plainGot.push(msg))
    const groFd = track(sockets.bindUdp({ host: '127.0.0.1', port: 0, gro: true }))

    const toPlain = distinctDatagrams(10, 64)
    const toGro = distinctDatagrams(5, 100, 50)
    class Fanout extends DatagramProtocol {
      datagramReceived() {
        // Inside a batch: queued, then sent together when the batch is done.
        for (const d of toPlain) this.transport!.write(d, ['127.0.0.1', plain.address().port])
        for (const d of toGro) this.transport!.write(d, ['127.0.0.1', portOf(groFd)])
      }
    }
    const fd = bindUdp4()
    const transport = r.adoptDatagramPort(fd, AddressFamily.INET, new Fanout())
    const trigger = dgram.createSocket('udp4')
    t.teardown(() => trigger.close())
    trigger.send('go', portOf(fd), '127.0.0.1')
    closeFd(fd)

    await waitUntil(() => plainGot.length >= 10, 'ten datagrams at the plain receiver')
    t.deepEqual(plainGot.map((d) => d.toString('hex')), toPlain.map((d) => d.toString('hex')))
    // The kernel hands a GRO receiver a GSO send whole: proof that the five left as one message.
    const reads = await receiveWithGro(groFd, 5)
    t.deepEqual(reads.map((x) => [x.data.toString('hex'), x.segment]), [[Buffer.concat(toGro).toString('hex'), 100]])
    closeFd(groFd)
    await transport.stopListening()
    await r.close()
  })
}

test('sockets.setUdpGro and bindUdp({ gro }) refuse bad arguments and non-UDP sockets with a code', (t) => {
  t.throws(() => sockets.setUdpGro(-1, true), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sockets.setUdpGro(1 << 30, true), { code: 'EBADF' })
  t.throws(() => sockets.setUdpGro(1.5, true), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sockets.setUdpGro(0, 'yes' as unknown as boolean), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => sockets.bindUdp({ host: '127.0.0.1', gro: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  const tcp = track(sockets.listenTcp({ host: '127.0.0.1', port: 0 }))
  t.throws(() => sockets.setUdpGro(tcp, true), { code: 'ENOPROTOOPT' })
  closeFd(tcp)
  const udp = track(sockets.bindUdp({ host: '127.0.0.1', port: 0 }))
  t.notThrows(() => sockets.setUdpGro(udp, true))
  t.notThrows(() => sockets.setUdpGro(udp, false))
  closeFd(udp)
})
