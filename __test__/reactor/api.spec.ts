// The exported classes (js/index.ts): error hierarchy, ServerFactory, Protocol,
// DatagramProtocol defaults and counting; ref/unref return this.
import test from 'ava'
import {
  reactor,
  Reactor,
  ServerFactory,
  Protocol,
  DatagramProtocol,
  UnsupportedAddressFamily,
  UnsupportedSocketType,
  InvalidAddressError,
  MessageLengthError,
  ConnectionClosed,
  ConnectionDone,
  ConnectionLost,
  ConnectionAborted,
  sockets,
} from 'reactor-socket'

test('error classes: ConnectionDone and ConnectionLost are sibling ConnectionCloseds; ConnectionAborted is a ConnectionLost', (t) => {
  for (const C of [
    UnsupportedAddressFamily,
    UnsupportedSocketType,
    InvalidAddressError,
    MessageLengthError,
    ConnectionClosed,
    ConnectionDone,
    ConnectionLost,
    ConnectionAborted,
  ]) {
    t.is(typeof C, 'function')
    t.true(C.prototype instanceof Error, `${C.name} extends Error`)
  }
  t.true(ConnectionDone.prototype instanceof ConnectionClosed)
  t.true(ConnectionLost.prototype instanceof ConnectionClosed)
  t.false(ConnectionDone.prototype instanceof ConnectionLost)
  t.false(ConnectionLost.prototype instanceof ConnectionDone)
  t.true(ConnectionAborted.prototype instanceof ConnectionLost)
  t.false(ConnectionAborted.prototype instanceof ConnectionDone)
})

test('the default reactor is a Reactor; new Reactor() takes options', async (t) => {
  t.true(reactor instanceof Reactor)
  const a = new Reactor()
  const b = new Reactor({ thread: false, onError: () => {} })
  t.not(a, reactor)
  t.true(b instanceof Reactor)
  await a.close()
  await b.close()
})

test('ServerFactory: protocol property, default buildProtocol makes new this.protocol() with p.factory', (t) => {
  class P extends Protocol {}
  const f = new ServerFactory()
  t.true('protocol' in f)
  ;(f as any).protocol = P
  const addr = { type: 'TCP', host: '127.0.0.1', port: 1 }
  const p = f.buildProtocol(addr as any) as any
  t.true(p instanceof P)
  t.is(p.factory, f)
  const q = f.buildProtocol(addr as any)
  t.not(q, p, 'a new protocol per call')
  class F extends ServerFactory {
    protocol = P
  }
  t.true(new F().buildProtocol(addr as any) instanceof P)
})

test('ServerFactory: doStart/doStop count ports; startFactory/stopFactory on 0→1 and 1→0; no-ops by default', (t) => {
  const plain = new ServerFactory()
  t.notThrows(() => {
    plain.doStart()
    plain.doStop()
    plain.startFactory()
    plain.stopFactory()
  })
  const calls: string[] = []
  class F extends ServerFactory {
    startFactory() {
      calls.push('start')
    }
    stopFactory() {
      calls.push('stop')
    }
  }
  const f = new F()
  f.doStart()
  f.doStart()
  f.doStart()
  t.deepEqual(calls, ['start'])
  f.doStop()
  f.doStop()
  t.deepEqual(calls, ['start'])
  f.doStop()
  t.deepEqual(calls, ['start', 'stop'])
  f.doStart()
  t.deepEqual(calls, ['start', 'stop', 'start'])
})

test('Protocol: makeConnection sets transport then calls connectionMade; base callbacks are no-ops; no half-close methods', (t) => {
  const fake = { write() {}, loseConnection() {} }
  let seen: unknown
  class P extends Protocol {
    connectionMade() {
      seen = (this as any).transport
    }
  }
  const p = new P()
  p.makeConnection(fake as any)
  t.is((p as any).transport, fake)
  t.is(seen, fake)
  const base = new Protocol()
  t.notThrows(() => {
    base.makeConnection(fake as any)
    base.connectionMade()
    base.dataReceived(Buffer.from('x'))
    base.connectionLost(new Error('x'))
  })
  t.false('readConnectionLost' in Protocol.prototype)
  t.false('writeConnectionLost' in Protocol.prototype)
  t.false('readConnectionLost' in base)
  t.false('writeConnectionLost' in base)
})

test('DatagramProtocol: doStart → startProtocol on 0→1, doStop → stopProtocol on 1→0, transport cleared after stop', (t) => {
  const calls: string[] = []
  class D extends DatagramProtocol {
    startProtocol() {
      calls.push('start')
    }
    stopProtocol() {
      calls.push('stop')
    }
  }
  const d = new D()
  ;(d as any).transport = { fake: true }
  d.doStart()
  d.doStart()
  t.deepEqual(calls, ['start'])
  d.doStop()
  t.deepEqual(calls, ['start'])
  d.doStop()
  t.deepEqual(calls, ['start', 'stop'])
  t.falsy((d as any).transport, 'transport cleared after stopProtocol')
  const base = new DatagramProtocol()
  t.notThrows(() => {
    base.startProtocol()
    base.stopProtocol()
    base.datagramReceived(Buffer.from('x'), { type: 'UDP', host: '127.0.0.1', port: 1 } as any)
    base.connectionRefused()
  })
})

test('sockets exposes the helper functions', (t) => {
  for (const n of ['listenTcp', 'bindUdp', 'listenUnix', 'connectTcp', 'socketPair', 'close', 'info']) {
    t.is(typeof (sockets as any)[n], 'function', n)
  }
})
