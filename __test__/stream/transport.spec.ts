// docs/adopting.md "adoptStreamConnection" — the transport: write/writeSequence, loseConnection ordering, writes after
// loss, addresses, TCP options, pause/resume, bufferSize, flags, ref/unref. Both reactor modes.
import test from 'ava'
import * as crypto from 'node:crypto'
import {
  Reactor,
  AddressFamily,
  ConnectionDone,
  IPv4Address,
  IPv6Address,
  UNIXAddress,
} from 'reactor-socket'
import {
  MODES,
  Rec,
  EchoRec,
  RecFactory,
  listenUnixFd,
  nodeClient,
  fileTeardown,
  within,
  waitUntil,
  type PairKind,
  adoptedConnection,
  quietPeriod,
  receiveQueue,
  writtenIntoPeerKernel,
} from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  const conn = (kind: PairKind, P: typeof Rec = Rec) => adoptedConnection(r, kind, cleanups, P)

  test(`${tag} write accepts Buffer, Uint8Array (views honoured) and strings (UTF-8)`, async (t) => {
    const { p, peer } = await conn('v4')
    p.t.write(Buffer.from('a'))
    p.t.write(new Uint8Array([98]))
    const backing = new Uint8Array([0, 0, 99, 100, 0])
    p.t.write(backing.subarray(2, 4))
    p.t.write('')
    p.t.write(new Uint8Array(0))
    p.t.write('é✓')
    const expected = Buffer.concat([Buffer.from('abcd'), Buffer.from('é✓', 'utf8')])
    await peer.waitBytes(expected.length)
    t.deepEqual(peer.data, expected)
    p.t.loseConnection()
    await peer.waitEnd()
    t.deepEqual(peer.data, expected)
  })

  test(`${tag} write of anything else throws TypeError and sends nothing`, async (t) => {
    const { p, peer } = await conn('v4')
    for (const bad of [123, {}, null, undefined, [1, 2], true, new ArrayBuffer(2), new Uint16Array(2), Symbol('x')]) {
      t.throws(() => p.t.write(bad), { instanceOf: TypeError }, `write(${String(typeof bad)})`)
    }
    p.t.write('ok')
    p.t.loseConnection()
    await peer.waitEnd()
    t.is(peer.text, 'ok')
  })

  test(`${tag} writeSequence sends all chunks in order and checks every item first`, async (t) => {
    const { p, peer } = await conn('v4')
    p.t.writeSequence(['a', Buffer.from('b'), new Uint8Array([99])])
    t.throws(() => p.t.writeSequence(['x', 5, 'y']), { instanceOf: TypeError })
    t.throws(() => p.t.writeSequence([Buffer.from('x'), null]), { instanceOf: TypeError })
    t.throws(() => p.t.writeSequence(123), { instanceOf: TypeError })
    p.t.writeSequence([])
    p.t.writeSequence(['-', 'end'])
    p.t.loseConnection()
    await peer.waitEnd()
    t.is(peer.text, 'abc-end', 'no item of a rejected sequence was sent')
  })

  test(`${tag} writes after loseConnection but before the close are sent, then EOF`, async (t) => {
    const { p, peer } = await conn('unix')
    peer.sock.pause()
    const big = crypto.randomBytes(2 * 1024 * 1024)
    p.t.write(big)
    t.true(p.t.bufferSize > 0, 'the peer is not reading: data is pending, so the close must wait')
    p.t.loseConnection()
    t.true(p.t.disconnecting)
    p.t.write('tail')
    p.t.writeSequence(['-', 'end'])
    peer.sock.resume()
    await peer.waitEnd(10000)
    t.is(peer.data.length, big.length + 'tail-end'.length)
    t.true(peer.data.subarray(0, big.length).equals(big))
    t.is(peer.data.subarray(big.length).toString(), 'tail-end')
    t.true((await within(p.waitLost(), 'connectionLost')) instanceof ConnectionDone)
  })

  test(`${tag} writes after the connection is lost are dropped silently`, async (t) => {
    let threwInLost: unknown
    class P extends Rec {
      connectionLost(reason: any) {
        super.connectionLost(reason)
        try {
          this.t.write('late')
          this.t.writeSequence(['late'])
          this.t.loseConnection()
        } catch (e) {
          threwInLost = e
        }
      }
    }
    const { p, peer } = await conn('v4', P)
    peer.sock.end()
    await within(p.waitLost(), 'connectionLost')
    t.is(threwInLost, undefined)
    t.notThrows(() => {
      p.t.write('after')
      p.t.write(Buffer.from('after'))
      p.t.writeSequence(['a', 'b'])
      p.t.loseConnection()
      p.t.abortConnection()
      p.t.pauseProducing()
      p.t.resumeProducing()
    })
    await peer.waitClose()
    t.is(peer.text, '')
    t.is(p.lostReasons.length, 1)
  })

  test(`${tag} getHost/getPeer on TCP v4 and v6 connections`, async (t) => {
    for (const kind of ['v4', 'v6'] as const) {
      const { p, peer, serverPort } = await conn(kind)
      const host = p.t.getHost()
      const peerAddr = p.t.getPeer()
      const ip = kind === 'v4' ? '127.0.0.1' : '::1'
      const Cls = kind === 'v4' ? IPv4Address : IPv6Address
      t.true(host instanceof Cls)
      t.true(peerAddr instanceof Cls)
      t.like(host, { type: 'TCP', host: ip, port: peer.sock.remotePort })
      t.like(peerAddr, { type: 'TCP', host: ip, port: serverPort })
      if (kind === 'v6') {
        t.like(host, { flowInfo: 0, scopeID: 0 })
        t.like(peerAddr, { flowInfo: 0, scopeID: 0 })
      }
      p.t.loseConnection()
      await peer.waitEnd()
    }
  })

  test(`${tag} getHost/getPeer on UNIX connections (socketpair and accepted)`, async (t) => {
    const { p, peer } = await conn('unix')
    t.true(p.t.getHost() instanceof UNIXAddress)
    t.true(p.t.getPeer() instanceof UNIXAddress)
    t.is(p.t.getHost().name, null)
    t.is(p.t.getPeer().name, null)
    p.t.loseConnection()
    await peer.waitEnd()

    const { fd, path } = listenUnixFd()
    const f = new RecFactory(Rec)
    const lp = r.adoptStreamPort(fd, AddressFamily.UNIX, f)
    const c = await nodeClient(path)
    await f.waitBuilt(1)
    const sp = f.built[0]
    t.true(sp.t.getHost() instanceof UNIXAddress)
    t.is(sp.t.getHost().name, path)
    t.is(sp.t.getPeer().name, null)
    c.destroy()
    await within(sp.waitLost(), 'lost')
    await within(lp.stopListening(), 'stopListening')
  })

  test(`${tag} TCP_NODELAY and SO_KEEPALIVE round-trip`, async (t) => {
    for (const kind of ['v4', 'v6'] as const) {
      const { p, peer } = await conn(kind)
      for (const on of [true, false, true]) {
        p.t.setTcpNoDelay(on)
        t.is(p.t.getTcpNoDelay(), on)
        p.t.setTcpKeepAlive(on)
        t.is(p.t.getTcpKeepAlive(), on)
      }
      p.t.loseConnection()
      await peer.waitEnd()
    }
  })

  test(`${tag} pauseProducing stops delivery; resumeProducing delivers what arrived meanwhile, in order`, async (t) => {
    const { p, peer } = await conn('v4')
    p.t.pauseProducing()
    peer.sock.write('one,')
    peer.sock.write('two,')
    peer.sock.write('three')
    await peer.waitDelivered()
    await quietPeriod(200, 'dataReceived while paused')
    t.is(p.data.length, 0, 'no dataReceived while paused')
    p.t.resumeProducing()
    await p.waitText('one,two,three')
    t.is(p.text, 'one,two,three')
    // paused again: the EOF waits behind the data too
    p.t.pauseProducing()
    peer.sock.end('|tail')
    await peer.waitDelivered()
    await quietPeriod(150, 'data or connectionLost while paused')
    t.is(p.text, 'one,two,three')
    p.t.resumeProducing()
    const reason = await within(p.waitLost(), 'connectionLost')
    t.true(reason instanceof ConnectionDone)
    t.is(p.text, 'one,two,three|tail')
    t.deepEqual(p.log.filter((x: string) => x === 'lost'), ['lost'])
    t.is(p.log[p.log.length - 1], 'lost')
  })

  test(`${tag} bufferSize: 0 after a small write, grows while the peer does not read, back to 0 after`, async (t) => {
    const { p, peer } = await conn('unix')
    p.t.write('small')
    t.is(p.t.bufferSize, 0, 'a write the kernel takes at once never counts')
    await peer.waitText('small')
    peer.sock.pause()
    const chunk = Buffer.alloc(256 * 1024, 1)
    let total = 0
    for (let i = 0; i < 16; i++) {
      p.t.write(chunk)
      total += chunk.length
    }
    const size = p.t.bufferSize
    t.true(size > 0, `bufferSize grew (${size})`)
    t.true(size <= total)
    peer.sock.resume()
    await peer.waitBytes(5 + total, 10000)
    await waitUntil(() => p.t.bufferSize === 0, 'bufferSize back to 0')
    t.is(peer.data.length, 5 + total)
  })

  test(`${tag} connected / disconnecting flags`, async (t) => {
    const { p, peer } = await conn('v4')
    t.true(p.t.connected)
    t.false(p.t.disconnecting)
    p.t.loseConnection()
    t.true(p.t.disconnecting)
    await within(p.waitLost(), 'lost')
    t.false(p.t.connected)
    await peer.waitEnd()
  })

  test(`${tag} transport ref()/unref() return the transport`, async (t) => {
    const { p, peer } = await conn('v4')
    t.is(p.t.unref(), p.t)
    t.is(p.t.ref(), p.t)
    p.t.loseConnection()
    await peer.waitEnd()
  })

  test(`${tag} stopProducing loses the connection`, async (t) => {
    const { p, peer } = await conn('v4')
    p.t.write('before stop')
    p.t.stopProducing()
    await peer.waitEnd()
    t.is(peer.text, 'before stop')
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
  })

  test(`${tag} 4 MiB echoed intact (write buffering under backpressure)`, async (t) => {
    const { p, peer } = await conn('v4', EchoRec)
    const big = crypto.randomBytes(4 * 1024 * 1024)
    peer.sock.write(big)
    await peer.waitBytes(big.length, 20000)
    t.true(peer.data.equals(big))
    peer.sock.end()
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
  })
  test(`${tag} after loseConnection no more dataReceived, even for data already read`, async (t) => {
    class P extends Rec {
      dataReceived(d: Buffer) {
        super.dataReceived(d)
        if (this.chunks.length === 1) this.t.loseConnection()
      }
    }
    const { p, peer } = await conn('v4', P)
    const chunk = Buffer.alloc(8192, 0x41)
    for (let i = 0; i < 64; i++) peer.sock.write(chunk)
    await within(p.waitLost(), 'lost')
    t.is(p.chunks.length, 1, 'loseConnection stops reading at once')
    await peer.waitClose()
  })

  test(`${tag} after abortConnection no more dataReceived, even for data already read`, async (t) => {
    class P extends Rec {
      dataReceived(d: Buffer) {
        super.dataReceived(d)
        if (this.chunks.length === 1) this.t.abortConnection()
      }
    }
    const { p, peer } = await conn('v4', P)
    const chunk = Buffer.alloc(8192, 0x42)
    for (let i = 0; i < 64; i++) peer.sock.write(chunk)
    await within(p.waitLost(), 'lost')
    await quietPeriod(50, 'dataReceived after abortConnection')
    t.is(p.chunks.length, 1)
    t.deepEqual(p.log, ['made', 'data', 'lost'])
    await peer.waitClose()
  })

  test(`${tag} pauseProducing inside dataReceived holds back the rest of the batch until resume`, async (t) => {
    class P extends Rec {
      dataReceived(d: Buffer) {
        super.dataReceived(d)
        if (this.chunks.length === 1) this.t.pauseProducing()
      }
    }
    const { p, peer, inode } = await conn('v4', P)
    const payload = crypto.randomBytes(512 * 1024)
    for (let off = 0; off < payload.length; off += 4096) peer.sock.write(payload.subarray(off, off + 4096))
    await waitUntil(() => p.chunks.length >= 1, 'first data')
    // the rest is at our end: all of it, or as much as our receive buffer holds
    await waitUntil(() => writtenIntoPeerKernel(peer.sock) || receiveQueue(inode) > 0, 'the rest of the bytes at our end')
    await quietPeriod(150, 'dataReceived while paused')
    t.is(p.chunks.length, 1, 'nothing delivered while paused')
    p.t.resumeProducing()
    await p.waitBytes(payload.length, 10000)
    t.true(p.data.equals(payload), 'all data, in order')
    p.t.loseConnection()
    await peer.waitEnd()
  })

  test(`${tag} received Buffers belong to the protocol: kept references stay intact`, async (t) => {
    const { p, peer } = await conn('v4')
    const payload = crypto.randomBytes(3 * 1024 * 1024)
    peer.sock.write(payload)
    await p.waitBytes(payload.length, 15000)
    t.true(p.chunks.every((c: unknown) => Buffer.isBuffer(c)))
    // chunks were stored by reference while later batches arrived
    t.true(Buffer.concat(p.chunks).equals(payload))
    p.t.loseConnection()
    await peer.waitEnd()
  })

  test(`${tag} a write that fails because the peer is gone does not call connectionLost from inside write`, async (t) => {
    let inWrite = false
    let lostInWrite: boolean | undefined
    class P extends Rec {
      connectionLost(reason: any) {
        lostInWrite = inWrite
        super.connectionLost(reason)
      }
    }
    const { p, peer } = await conn('unix', P)
    peer.sock.destroy()
    await peer.waitClose()
    inWrite = true
    try {
      for (let i = 0; i < 20; i++) p.t.write('into the void')
    } finally {
      inWrite = false
    }
    t.false(lostInWrite === true, 'connectionLost not called from inside write()')
    await within(p.waitLost(), 'lost')
    t.false(lostInWrite)
    await quietPeriod(30, 'a second connectionLost')
    t.is(p.lostReasons.length, 1)
  })

  test(`${tag} many connections with random-sized chunks are echoed intact`, async (t) => {
    const conns = await Promise.all(Array.from({ length: 8 }, () => conn('v4', EchoRec)))
    const sent = conns.map(() => [] as Buffer[])
    for (let round = 0; round < 50; round++) {
      conns.forEach((c, i) => {
        const b = crypto.randomBytes(1 + Math.floor(Math.random() * 3000))
        sent[i].push(b)
        c.peer.sock.write(b)
      })
    }
    await Promise.all(conns.map((c, i) => c.peer.waitBytes(Buffer.concat(sent[i]).length, 10000)))
    conns.forEach((c, i) => t.true(c.peer.data.equals(Buffer.concat(sent[i])), `connection ${i}`))
    conns.forEach((c) => c.peer.sock.end())
    await Promise.all(conns.map((c) => within(c.p.waitLost(), 'lost')))
  })
}
