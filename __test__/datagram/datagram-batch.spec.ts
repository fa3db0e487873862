// The optional batch hook: a DatagramProtocol that defines datagramsReceived gets every datagram
// of a delivered batch in one call, in arrival order, instead of one datagramReceived per datagram.
import test from 'ava'
import dgram from 'node:dgram'
import { Reactor, AddressFamily, DatagramProtocol, IPv4Address, sockets } from 'reactor-socket'
import type { ReceivedDatagram } from 'reactor-socket'
import { MODES, within } from '../helpers.js'

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  test(`${tag} datagramsReceived gets whole batches, in order, and replaces datagramReceived`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    t.teardown(() => r.close()) // also when an assertion fails
    const fd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
    const port = (sockets.info(fd).local as IPv4Address).port
    const calls: ReceivedDatagram[][] = []
    let single = 0
    let resolveAll!: () => void
    const all = new Promise<void>((resolve) => (resolveAll = resolve))
    const COUNT = 200
    class Bulk extends DatagramProtocol {
      datagramReceived() {
        single++
      }
      datagramsReceived(datagrams: ReceivedDatagram[]) {
        calls.push(datagrams)
        if (calls.flat().length >= COUNT) resolveAll()
      }
    }
    const p = r.adoptDatagramPort(fd, AddressFamily.INET, new Bulk())
    sockets.close(fd)
    const client = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
    for (let i = 0; i < COUNT; i++) client.send(`#${i}`, port, '127.0.0.1')
    await within(all, `${COUNT} datagrams`, 5000).catch(() => {}) // the count is checked below
    const got = calls.flat()
    t.is(got.length, COUNT, 'every datagram arrived (loopback does not drop 200 small datagrams)')
    t.deepEqual(
      got.map((d) => d.data.toString()),
      Array.from({ length: COUNT }, (_, i) => `#${i}`),
    )
    t.true(got.every((d) => d.addr instanceof IPv4Address && d.addr.type === 'UDP' && d.addr.port === client.address().port))
    t.true(calls.length < COUNT, 'datagrams came in batches, not one call each')
    t.is(single, 0)
    client.close()
    await p.stopListening()
    await r.close()
  })
}
