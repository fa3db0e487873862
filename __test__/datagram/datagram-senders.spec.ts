// Sender addresses are decoded once per recent peer (a small per-port table of frozen addresses):
// with more peers than the table holds, every datagram must still carry its own sender.
import dgram from 'node:dgram'
import test from 'ava'
import { Reactor, AddressFamily, DatagramProtocol, IPv4Address, IPv6Address } from 'reactor-socket'
import { MODES, fileTeardown, bindUdp4, bindUdp6, closeFd, portOf, waitUntil } from '../helpers.js'

const { reactors } = fileTeardown()
const PEERS = 150 // more than the table's 64 slots: entries collide and are replaced

for (const mode of MODES) {
  for (const family of ['udp4', 'udp6'] as const) {
    test(`[${mode.name}] ${family}: ${PEERS} peers, each datagram with its own sender`, async (t) => {
      const r = new Reactor({ thread: mode.thread })
      reactors.push(r)
      const host = family === 'udp4' ? '127.0.0.1' : '::1'
      const got: Array<{ text: string; addr: IPv4Address | IPv6Address }> = []
      class Collect extends DatagramProtocol {
        datagramReceived(data: Buffer, addr: IPv4Address | IPv6Address) {
          got.push({ text: data.toString(), addr })
        }
      }
      const fd = family === 'udp4' ? bindUdp4() : bindUdp6()
      const port = r.adoptDatagramPort(fd, family === 'udp4' ? AddressFamily.INET : AddressFamily.INET6, new Collect())
      const target = portOf(fd)
      closeFd(fd)
      const peers: dgram.Socket[] = []
      t.teardown(() => peers.forEach((p) => p.close()))
      for (let i = 0; i < PEERS; i++) {
        const p = dgram.createSocket(family)
        await new Promise<void>((resolve) => p.bind(0, host, resolve))
        peers.push(p)
      }
      // Two rounds, so that senders are seen again after others replaced their entries.
      for (let round = 0; round < 2; round++) {
        for (const p of peers) p.send(String(p.address().port), target, host)
        await waitUntil(() => got.length >= PEERS * (round + 1), `round ${round}`)
      }
      t.is(got.length, 2 * PEERS)
      for (const { text, addr } of got) {
        t.is(addr.port, Number(text))
        t.is(addr.host, host)
        t.true(Object.isFrozen(addr))
      }
      await port.stopListening()
      await r.close()
    })
  }
}
