// The wire format between the core and the TypeScript layer is defined once, in Rust, and exported
// by the binding: this checks that every name js/wire.ts reads exists there as a number, that the
// values of each group are distinct, and that a real batch decodes with them.
import test from 'ava'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import * as net from 'node:net'
import { Reactor, AddressFamily, Protocol, ServerFactory, sockets } from 'reactor-socket'

const load = createRequire(path.join(process.cwd(), 'package.json'))
const binding = load('./native/binding.js')
const wire = load('./dist/wire.js')

const groups: Record<string, string[]> = {
  kinds: ['EV_ACCEPT', 'EV_DATA', 'EV_EOF', 'EV_CLOSED', 'EV_DRAINED', 'EV_WRITE_CLOSED', 'EV_DATAGRAM', 'EV_DATAGRAM_ERROR', 'EV_DATA_CHUNK', 'EV_CONNECTED', 'EV_RELAY_ENDED', 'EV_NONE', 'EV_FDS', 'EV_PROXY_INFO', 'EV_ROUTE', 'EV_PORT_DRAINED', 'EV_TLS_READY', 'EV_TLS_ERROR'],
  layout: ['EVENT_STRIDE', 'BATCH_HEADER', 'RECORDS_OVERFLOW', 'ADDRESS_RECORD_HEADER'],
  state: ['STATE_PAUSED', 'STATE_READ_EOF', 'STATE_READ_STOPPED', 'STATE_WRITE_CLOSING', 'STATE_WRITE_CLOSED', 'STATE_DISCONNECTING', 'STATE_CLOSED', 'STATE_GONE', 'STATE_CONNECTING', 'STATE_RELAYING'],
  adopt: ['ADOPT_LISTENER', 'ADOPT_CONNECTION', 'ADOPT_DATAGRAM'],
  refusal: ['REFUSED_OS', 'REFUSED_SOCKET_TYPE', 'REFUSED_FAMILY', 'REFUSED_NOT_LISTENING', 'REFUSED_NOT_CONNECTED'],
}
groups.kinds.push('EV_DATAGRAM_ROUTE', 'EV_DATAGRAM_PROXY_CLOSED') // datagram proxies (listenDatagramProxy)

test('every wire name the TypeScript layer uses is a number the binding exports, and distinct in its group', (t) => {
  const used = Object.keys(wire).filter((k) => /^[A-Z_]+$/.test(k)).sort()
  t.deepEqual(used, Object.values(groups).flat().sort(), 'js/wire.ts reads exactly the names listed here')
  for (const [group, names] of Object.entries(groups)) {
    for (const name of names) {
      t.is(typeof binding[name], 'number', `${name} is exported by the binding`)
      t.is(wire[name], binding[name], `${name} is the binding's value`)
    }
    if (group !== 'layout') t.is(new Set(names.map((n) => binding[n])).size, names.length, `${group} values are distinct`)
  }
  for (const name of groups.state) t.is(binding[name] & (binding[name] - 1), 0, `${name} is a single bit`)
})

test('a real batch decodes with the exported layout: accept, data, EOF reach the protocol in order', async (t) => {
  const r = new Reactor()
  const listener = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const log: string[] = []
  let done!: () => void
  const finished = new Promise<void>((resolve) => (done = resolve))
  class P extends Protocol {
    connectionMade() { log.push(`made ${(this.transport!.getPeer() as { type?: string }).type}`) }
    dataReceived(d: Buffer) { log.push(`data ${d.toString()}`) }
    connectionLost() { log.push('lost'); done() }
  }
  const factory = new ServerFactory()
  factory.protocol = P
  const port = r.adoptStreamPort(listener, AddressFamily.INET, factory)
  sockets.close(listener)
  const client = net.connect((port.getHost() as any).port, '127.0.0.1', () => client.end('hello'))
  await finished
  t.deepEqual(log, ['made TCP', 'data hello', 'lost'])
  client.destroy()
  await port.stopListening()
  await r.close()
})
