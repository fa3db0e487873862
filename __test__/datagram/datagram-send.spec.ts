// Datagram writes to a peer that was just written to skip passing the address to the core again
// (the core keeps the last one). Whatever the sequence of writes, refusals and connects, every
// datagram must reach the address it was written to.
import dgram from 'node:dgram'
import { Reactor, AddressFamily, DatagramProtocol, InvalidAddressError } from 'reactor-socket'
import test from 'ava'
import { MODES, fileTeardown, bindUdp4, closeFd, portOf, waitUntil } from '../helpers.js'

const { reactors } = fileTeardown()

async function receiver() {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
  const got: string[] = []
  sock.on('message', (msg) => got.push(msg.toString()))
  return { sock, got, port: sock.address().port }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test(`${tag} writes alternating between peers, around refused addresses and a connect, reach the peer they name`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const a = await receiver()
    const b = await receiver()
    t.teardown(() => {
      a.sock.close()
      b.sock.close()
    })
    const fd = bindUdp4()
    const proto = new DatagramProtocol()
    const port = r.adoptDatagramPort(fd, AddressFamily.INET, proto)
    closeFd(fd)
    const A = ['127.0.0.1', a.port] as const
    const B = ['127.0.0.1', b.port] as const
    // Outside a batch (sent at once) ...
    port.write('a1', A)
    port.write('a2', A)
    t.throws(() => port.write('x', ['not-an-ip', a.port]), { instanceOf: InvalidAddressError })
    port.write('a3', A)
    port.write('b1', B)
    port.write('a4', A)
    port.write('b2', B)
    port.write('b3', B)
    // ... and inside one (queued, sent together).
    class Replier extends DatagramProtocol {
      datagramReceived() {
        this.transport!.write('a5', A)
        this.transport!.write('b4', B)
        this.transport!.write('b5', B)
        this.transport!.write('a6', A)
      }
    }
    const replierFd = bindUdp4()
    const replier = r.adoptDatagramPort(replierFd, AddressFamily.INET, new Replier())
    const triggerSock = dgram.createSocket('udp4')
    t.teardown(() => triggerSock.close())
    triggerSock.send('go', portOf(replierFd), '127.0.0.1')
    closeFd(replierFd)
    // A connect in between: the next write to B, with an address, still goes to B.
    await waitUntil(() => a.got.length >= 6 && b.got.length >= 5, 'all datagrams')
    port.connect('127.0.0.1', a.port)
    port.write('b6', B)
    port.write('a7')
    await waitUntil(() => a.got.length >= 7 && b.got.length >= 6, 'the datagrams after connect')
    t.deepEqual(a.got, ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7'])
    t.deepEqual(b.got, ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'])
    await port.stopListening()
    await replier.stopListening()
    await r.close()
  })
}
