// Faults: datagram floods. A separate process (fixtures/faults-udp-flood.mjs) sends datagrams as fast
// as it can for 0.8 s to an adopted UDP port whose datagramReceived busy-waits 20 µs (so JS takes at
// most ~50,000 a second, well below what arrives). Checked:
//  - memory stays bounded;
//  - what arrives is intact (every byte checked) and in order, nothing duplicated;
//  - nothing is lost unaccounted: received + port.droppedDatagrams + the kernel's drops for the
//    socket (/proc/net/udp*) = datagrams sent;
//  - the excess is counted: received + port.droppedDatagrams = datagrams sent, drops at the socket's
//    receive buffer included (the kernel reports them with SO_RXQ_OVFL);
//  - the port keeps working afterwards (receives and sends), and stopping it leaves no fd behind.
// Both reactor modes, IPv4 and IPv6. Serial (measures this process's RSS and fd table).
import test from 'ava'
import { Reactor, AddressFamily } from 'reactor-socket'
import {
  MODES,
  bindUdp4,
  bindUdp6,
  closeFd,
  within,
  waitUntil,
  fixture,
  child,
  udpPeer,
  fdList,
  DgramRec,
  rss,
  rssSampler,
  MiB,
  spin,
  settleFds,
  procNetEntry,
  receiveQueue,
  socketInode,
  waitStable,
  fileTeardown,
} from '../helpers.js'

const SECONDS = 0.8
const SIZE = 200
const SPIN_US = 20

fileTeardown()

function expected(n: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len)
  b.writeUInt32BE(n, 0)
  for (let i = 4; i < len; i++) b[i] = (n * 31 + i) & 0xff
  return b
}

for (const mode of MODES) {
  for (const v6 of [false, true]) {
    const tag = `[${mode.name}] ${v6 ? 'IPv6' : 'IPv4'}`
    test.serial(`${tag} a datagram flood JS cannot keep up with: memory bounded, excess dropped and counted, the port keeps working`, async (t) => {
      const before = fdList()
      const errors: unknown[] = []
      const r = new Reactor({ thread: mode.thread, onError: (e) => errors.push(e) })
      t.teardown(() => r.close())
      const fd = v6 ? bindUdp6() : bindUdp4()
      const host = v6 ? '::1' : '127.0.0.1'
      let received = 0
      let corrupt = 0
      let disorder = 0
      let lastSeq = -1
      const sampler = rssSampler()
      const proto = new DgramRec()
      proto.datagramReceived = (data: Buffer, addr: any) => {
        if (data.length === SIZE) {
          received++
          const n = data.readUInt32BE(0)
          if (n <= lastSeq) disorder++
          lastSeq = n
          if (!data.equals(expected(n, SIZE))) corrupt++
          if ((received & 1023) === 0) sampler.sample()
          spin(SPIN_US)
        } else {
          proto.got.push({ data: Buffer.from(data), addr })
        }
      }
      const port = r.adoptDatagramPort(fd, v6 ? AddressFamily.INET6 : AddressFamily.INET, proto, 2048)
      const inode = socketInode(fd) // names the reactor's duplicate too, after the close
      closeFd(fd)
      const portNumber = port.getHost().port
      const kernelDrops = () => procNetEntry(inode)!.drops!
      const drops0 = kernelDrops()
      const base = rss()

      const c = child(fixture('faults-udp-flood.mjs'), [String(portNumber), host, String(SECONDS), String(SIZE)])
      t.teardown(() => c.kill())
      const [sentText] = (await c.line('DONE ', 20000)).split(' ')
      const sent = Number(sentText)
      // let the backlog drain: the kernel's queue empties, then nothing more arrives for 300 ms
      // (datagrams the reactor already read may still be on their way to JS)
      await waitUntil(() => receiveQueue(inode) === 0, "the socket's kernel queue to drain", 20000)
      await waitStable(() => received, 'the flood to drain', { period: 300, ms: 20000 })
      const growth = sampler.stop() - base
      const dropped = port.droppedDatagrams
      const kdrops = kernelDrops() - drops0
      t.log(
        `sent ${sent}, received ${received}, port.droppedDatagrams ${dropped}, kernel drops ${kdrops}, ` +
          `unaccounted ${sent - received - dropped}; RSS max +${(growth / MiB).toFixed(1)} MiB`,
      )
      t.is(corrupt, 0, 'every datagram that arrived is intact')
      t.is(disorder, 0, 'in order, none duplicated')
      t.true(received < sent, 'the flood was more than JS could take')
      t.true(growth < 64 * MiB, `memory bounded (+${(growth / MiB).toFixed(1)} MiB)`)
      // droppedDatagrams counts both the core's drops and the kernel's drops at this socket
      t.is(received + dropped, sent, 'every datagram is received or counted in port.droppedDatagrams')
      t.true(kdrops <= dropped, 'the kernel drops are part of the count')

      // the port keeps working
      const peer = await udpPeer(v6 ? 'udp6' : 'udp4')
      t.teardown(() => peer.close())
      await peer.send('still there?', portNumber, host)
      await waitUntil(() => proto.got.length === 1, 'a datagram after the flood')
      t.is(proto.got[0].data.toString(), 'still there?')
      port.write('yes', [host, peer.port])
      await peer.waitCount(1)
      t.is(peer.got[0].data.toString(), 'yes')
      // A drop the kernel made for this socket is known to the receiver with the next datagram
      // (SO_RXQ_OVFL), which has arrived by now.
      const droppedAfter = port.droppedDatagrams

      peer.close()
      await within(c.exited, 'flood process exit')
      await within(port.stopListening(), 'stopListening')
      t.is(proto.stops, 1)
      await within(r.close(), 'close')
      t.deepEqual(errors, [])
      t.deepEqual(await settleFds(before), [], 'no fd left behind')
      t.is(
        received + droppedAfter,
        sent,
        `the excess is counted in port.droppedDatagrams: ${droppedAfter} counted, ${sent - received} dropped ` +
          `(${kdrops} of them by the kernel, from the socket's full receive buffer)`,
      )
    })
  }
}
