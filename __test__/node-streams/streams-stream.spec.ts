// SocketStream as a stream.Duplex and as a net.Socket look-alike: addresses and options, pipeline,
// end() and half-close, destroy() and destroy(err), resets and aborts as 'error', setTimeout,
// a stream made before its connection, exactly one 'close', bad input. Both reactor modes; TCP
// (v4, v6) and UNIX where it applies.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as crypto from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { ConnectionLost, Reactor, ServerFactory, SocketStream, sockets } from 'reactor-socket'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  HAS_PYTHON,
  MODES,
  adoptablePair,
  child,
  closeFd,
  fixture,
  fdList,
  fileTeardown,
  quietPeriod,
  rawClient,
  soError,
  testIf,
  track,
  waitUntil,
  within,
  type PairKind,
} from '../helpers.js'
import { MiB, once, patternBytes, readAll, sha256, streamPair, streamPort, streamPortWith } from './streams-helpers.js'

const { reactors, cleanups } = fileTeardown()

// Reading a raw peer's SO_ERROR (to see a reset) needs python3 (helpers.soError).
const withPython = testIf(HAS_PYTHON, 'python3 is not installed, SO_ERROR cannot be read')

/** Records a stream's 'end', 'finish', 'close' and 'error' events. */
function watch(stream: SocketStream) {
  const events: string[] = []
  const errors: any[] = []
  let closes = 0
  stream.on('end', () => events.push('end'))
  stream.on('finish', () => events.push('finish'))
  stream.on('error', (e) => {
    events.push('error')
    errors.push(e)
  })
  stream.on('close', () => {
    events.push('close')
    closes++
  })
  return {
    events,
    errors,
    get closes() {
      return closes
    },
    closed: () => waitUntil(() => closes > 0, "the stream's 'close'"),
  }
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const kind of ['v4', 'v6', 'unix'] as PairKind[]) {
    test(`${tag} ${kind}: the net.Socket members (addresses, byte counts, options, state)`, async (t) => {
      const { stream, peer } = await streamPair(r, kind, cleanups)
      t.true(stream instanceof SocketStream)
      t.is(stream.transport, stream.protocol.transport)
      t.false(stream.connecting)
      t.false(stream.pending)
      t.is(stream.readyState, 'open')
      t.false(stream.allowHalfOpen, 'allowHalfOpen is false by default, as for net.Socket')
      if (kind === 'unix') {
        t.is(stream.remoteAddress, undefined)
        t.is(stream.remoteFamily, undefined)
        t.deepEqual(stream.address(), {})
        t.is(stream.setNoDelay(true), stream, 'TCP options are no-ops on UNIX sockets, as in net')
        t.is(stream.setKeepAlive(true), stream)
      } else {
        const [host, family] = kind === 'v4' ? (['127.0.0.1', 'IPv4'] as const) : (['::1', 'IPv6'] as const)
        t.is(stream.remoteAddress, host)
        t.is(stream.remoteFamily, family)
        t.is(stream.remotePort, peer.sock.localPort)
        t.is(stream.localAddress, host)
        t.is(stream.localPort, peer.sock.remotePort)
        t.deepEqual(stream.address(), { address: host, family, port: peer.sock.remotePort })
        t.is(stream.setNoDelay(), stream)
        t.true(stream.transport!.getTcpNoDelay(), 'setNoDelay() with no argument turns it on')
        stream.setNoDelay(false)
        t.false(stream.transport!.getTcpNoDelay())
        t.is(stream.setKeepAlive(true, 1000), stream)
        t.true(stream.transport!.getTcpKeepAlive())
        stream.setKeepAlive(false)
        t.false(stream.transport!.getTcpKeepAlive())
      }
      t.is(stream.ref(), stream)
      t.is(stream.unref(), stream)
      stream.ref()
      stream.write('ping')
      await peer.waitText('ping')
      peer.sock.write('pong!')
      t.is((await once<Buffer>(stream, 'data')).toString(), 'pong!')
      t.is(stream.bytesRead, 5)
      t.is(stream.bytesWritten, 4)
    })
  }

  test(`${tag} pipeline: a file into the stream, and the stream into a hash`, async (t) => {
    const { stream, peer } = await streamPair(r, 'v4', cleanups, { allowHalfOpen: true }, { allowHalfOpen: true })
    const file = path.join(os.tmpdir(), `rs-${process.pid}-pipeline.bin`)
    const data = patternBytes(4 * MiB, 11)
    fs.writeFileSync(file, data)
    cleanups.push(() => fs.rmSync(file, { force: true }))
    // Out: the file through the stream; pipeline ends the stream (FIN) when the file is done.
    await within(pipeline(fs.createReadStream(file), stream), 'pipeline file → stream', 20000)
    await peer.waitEnd(20000)
    t.is(sha256(peer.data), sha256(data))
    // In: what the peer sends (then FIN) through the stream into a hash.
    const hash = crypto.createHash('sha256')
    peer.sock.end(data)
    await within(pipeline(stream, hash), 'pipeline stream → hash', 20000)
    t.is(hash.digest('hex'), sha256(data))
    await waitUntil(() => stream.destroyed, 'the stream to close after both directions ended')
  })

  test(`${tag} end() sends FIN after every pending byte; the peer's FIN then closes the stream`, async (t) => {
    const { stream, peer } = await streamPair(r, 'v4', cleanups, {}, { allowHalfOpen: true })
    const w = watch(stream)
    stream.resume()
    peer.sock.pause() // nothing is read until after end(): the bytes are queued in the transport
    const data = patternBytes(8 * MiB, 5)
    stream.write(data)
    stream.end('tail')
    t.true(stream.transport!.bufferSize > 0, 'bytes are still queued when end() returns')
    peer.sock.resume()
    await peer.waitEnd(20000)
    t.is(sha256(peer.data), sha256(Buffer.concat([data, Buffer.from('tail')])))
    t.false(stream.destroyed, 'the readable side is still open (the peer has not ended)')
    peer.sock.end()
    await w.closed()
    t.deepEqual(w.events, ['finish', 'end', 'close'])
  })

  test(`${tag} allowHalfOpen false (default): the peer's EOF ends the stream, which ends its side and closes`, async (t) => {
    const { stream, peer } = await streamPair(r, 'unix', cleanups, {}, { allowHalfOpen: true })
    const w = watch(stream)
    stream.resume()
    peer.sock.end('bye')
    await peer.waitEnd()
    await w.closed()
    t.deepEqual(w.events, ['end', 'finish', 'close'])
    t.is(w.errors.length, 0)
  })

  for (const kind of ['v4', 'unix'] as PairKind[]) {
    test(`${tag} ${kind}: allowHalfOpen true: after the peer's EOF the stream keeps writing until end()`, async (t) => {
      const { stream, peer } = await streamPair(r, kind, cleanups, { allowHalfOpen: true }, { allowHalfOpen: true })
      t.true(stream.allowHalfOpen)
      const w = watch(stream)
      const received = readAll(stream, "the peer's request")
      peer.sock.end('question')
      t.is((await received).toString(), 'question')
      t.true(stream.writable, 'the writable side stays open')
      t.is(stream.readyState, 'writeOnly')
      stream.write('answer, ')
      await peer.waitText('answer, ')
      stream.end('done')
      await peer.waitEnd()
      t.is(peer.text, 'answer, done')
      await w.closed()
      t.deepEqual(w.events, ['end', 'finish', 'close'])
    })
  }

  for (const kind of ['v4', 'v6'] as PairKind[]) {
    withPython(`${tag} ${kind}: destroy(err) resets the peer, destroy() does not; 'close' once`, async (t) => {
      const streams: SocketStream[] = []
      const p = streamPort(r, kind, (s) => streams.push(s))
      cleanups.push(() => void p.port.stopListening())
      // Raw peers that nobody reads: their SO_ERROR tells whether a reset reached them.
      const aborted = track(sockets.connectTcp(p.host!, p.portNumber!))
      const closed = track(sockets.connectTcp(p.host!, p.portNumber!))
      await waitUntil(() => streams.length === 2, 'both connections')
      const [a, b] = streams
      const wa = watch(a)
      const wb = watch(b)
      const boom = new Error('boom')
      a.destroy(boom)
      b.destroy()
      await wa.closed()
      await wb.closed()
      t.deepEqual(wa.events, ['error', 'close'])
      t.is(wa.errors[0], boom)
      t.deepEqual(wb.events, ['close'])
      t.false(a.transport!.connected)
      t.false(b.transport!.connected)
      // A reset reaching a peer that got our FIN first leaves EPIPE (32) or ECONNRESET (104) in SO_ERROR.
      let errA = 0
      await waitUntil(async () => (errA = await soError(aborted)) !== 0, 'an error at the reset peer', 3000, 50)
      t.true(errA === 32 || errA === 104, `SO_ERROR of the reset peer: ${errA}`)
      t.is(await soError(closed), 0, 'destroy() with nothing pending closes in order')
      closeFd(aborted)
      closeFd(closed)
      await quietPeriod(50, "a second 'close'")
      t.is(wa.closes + wb.closes, 2, "exactly one 'close' each")
    })
  }

  test(`${tag} destroy() with nothing pending closes with FIN (the peer sees a clean end)`, async (t) => {
    const { stream, peer } = await streamPair(r, 'v4', cleanups)
    const w = watch(stream)
    stream.write('last')
    await peer.waitText('last')
    stream.destroy()
    await peer.waitEnd()
    await w.closed()
    t.deepEqual(w.events, ['close'])
    t.is(peer.error, undefined)
  })

  test(`${tag} a reset by the peer becomes 'error' with code ECONNRESET, then 'close', once`, async (t) => {
    const { stream, peer } = await streamPair(r, 'v4', cleanups)
    const w = watch(stream)
    stream.resume()
    peer.sock.resetAndDestroy()
    await w.closed()
    t.deepEqual(w.events, ['error', 'close'])
    t.true(w.errors[0] instanceof ConnectionLost)
    t.is(w.errors[0].code, 'ECONNRESET')
    t.is(typeof w.errors[0].errno, 'number')
    await quietPeriod(50, "a second 'close'")
    t.is(w.closes, 1)
  })

  test(`${tag} setTimeout emits 'timeout' after idleness; activity defers it; 0 disables it`, async (t) => {
    const { stream, peer } = await streamPair(r, 'v4', cleanups)
    const IDLE = 400
    let lastData = Date.now()
    stream.on('data', () => (lastData = Date.now()))
    const fired: number[] = [] // how long after the last data each 'timeout' came
    t.is(stream.setTimeout(IDLE, () => fired.push(Date.now() - lastData)), stream)
    t.is(stream.timeout, IDLE)
    // Traffic every 20 ms for a second: a 'timeout' may only come after a real gap of IDLE ms (a
    // loaded machine can stall the loop; the property holds regardless).
    const started = Date.now()
    while (Date.now() - started < 1000) {
      peer.sock.write('x')
      await sleep(20) // pacing the traffic, not waiting for anything
    }
    await waitUntil(() => fired.length > 0, "'timeout' once the traffic stopped", 5000)
    // Node's timers use the loop's cached clock, which may lag by a few ms.
    t.true(fired.every((gap) => gap >= IDLE - 50), `'timeout' only after ${IDLE} ms without data: ${fired}`)
    t.false(stream.destroyed, "'timeout' does not close the stream (as with net.Socket)")
    const cb = () => fired.push(-1)
    stream.setTimeout(100, cb)
    stream.setTimeout(0, cb)
    t.is(stream.listenerCount('timeout'), 0, 'setTimeout(0, cb) removes cb')
    const count = fired.length
    await quietPeriod(300, "a 'timeout' after setTimeout(0)")
    t.is(fired.length, count, 'setTimeout(0) disabled it')
  })

  test(`${tag} a stream made before its connection buffers writes and end(), then 'connect'`, async (t) => {
    const x = await adoptablePair('v4', { allowHalfOpen: true })
    cleanups.push(x.cleanup)
    const stream = new SocketStream()
    cleanups.push(() => stream.destroy())
    t.true(stream.connecting)
    t.true(stream.pending)
    t.is(stream.readyState, 'opening')
    t.is(stream.transport, null)
    t.is(stream.remoteAddress, undefined)
    stream.setNoDelay(true)
    stream.write('early ')
    stream.end('and ended')
    t.is(stream.bytesWritten, 'early and ended'.length, 'queued bytes count as written, as in net')
    const connected = once(stream, 'connect')
    const p = r.adoptStreamConnection(x.fd, x.family, { buildProtocol: () => stream.protocol })
    closeFd(x.fd)
    t.is(p, stream.protocol)
    await connected
    t.false(stream.connecting)
    t.true(stream.transport!.getTcpNoDelay(), 'options asked for early are applied on connect')
    await x.peer.waitEnd()
    t.is(x.peer.text, 'early and ended')
    t.is(stream.bytesWritten, 'early and ended'.length)
  })

  test(`${tag} a listener that throws is reported; the stream closes without 'error'`, async (t) => {
    const errors: unknown[] = []
    const r2 = new Reactor({ thread: mode.thread, onError: (e) => errors.push(e) })
    reactors.push(r2)
    const { stream, peer } = await streamPair(r2, 'v4', cleanups)
    const w = watch(stream)
    const oops = new Error('listener bug')
    stream.on('data', () => {
      throw oops
    })
    peer.sock.write('trigger')
    await w.closed()
    t.deepEqual(errors, [oops], 'reported through onError')
    t.deepEqual(w.events, ['close'])
    await peer.waitClose()
  })

  test(`${tag} a forStreams listener that throws: inside adoptStreamConnection the caller gets it; on a port it is reported`, async (t) => {
    const errors: unknown[] = []
    const r2 = new Reactor({ thread: mode.thread, onError: (e) => errors.push(e) })
    reactors.push(r2)
    const x = await adoptablePair('v4')
    cleanups.push(x.cleanup)
    const bad = new Error('listener bug')
    const made: SocketStream[] = []
    const factory = ServerFactory.forStreams((s) => {
      made.push(s)
      throw bad
    })
    t.throws(() => r2.adoptStreamConnection(x.fd, x.family, factory), { is: bad })
    closeFd(x.fd)
    t.is(made.length, 1)
    t.deepEqual(errors, [], 'thrown to the caller, not reported')
    // The caller's fd was the only other reference: with it closed the peer sees the end.
    await x.peer.waitClose()

    const p = streamPort(r2, 'v4', () => {
      throw bad
    })
    cleanups.push(() => void p.port.stopListening())
    const client = rawClient(p.portNumber!) // connected by the kernel: the abort cannot race the connect
    cleanups.push(() => client.destroy())
    await client.waitClose()
    t.deepEqual(errors, [bad], 'reported through onError; the connection was aborted')
  })

  test(`${tag} reactor.close() aborts the stream: 'close' without 'error' (our own side ended it)`, async (t) => {
    const r2 = new Reactor({ thread: mode.thread })
    const { stream, peer } = await streamPair(r2, 'v4', cleanups)
    const w = watch(stream)
    await r2.close()
    await w.closed()
    t.deepEqual(w.events, ['close'])
    await peer.waitClose()
  })
}

test('forStreams makes a ServerFactory: it counts its ports and sets each protocol\'s factory', async (t) => {
  const r = new Reactor({ thread: false })
  reactors.push(r)
  const got: SocketStream[] = []
  const f = ServerFactory.forStreams((s) => got.push(s))
  t.true(f instanceof ServerFactory)
  const p = streamPortWith(r, f)
  t.is(f.numPorts, 1)
  const client = await p.connect()
  cleanups.push(() => client.destroy())
  await waitUntil(() => got.length === 1, 'the stream')
  cleanups.push(() => got[0].destroy())
  t.is(got[0].protocol.factory, f)
  t.true(got[0].protocol.connected)
  await within(p.port.stopListening(), 'stopListening')
  t.is(f.numPorts, 0)
})

for (const mode of MODES) {
  test(`[${mode.name}] a SocketStream pooled (unref'd) by an http.Agent lets the process exit`, async (t) => {
    const c = child(fixture('streams-pooled.mjs'), [mode.name])
    const result = await c.wait(15000)
    t.is(result.code, 0, result.stderr)
    t.regex(result.stdout, /^DONE pooled$/m)
  })
}

test.serial('bad input: typed errors, nothing opened', (t) => {
  const before = fdList()
  t.throws(() => ServerFactory.forStreams(42 as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
  t.throws(() => ServerFactory.forStreams(() => {}, null as any), { instanceOf: TypeError } as any)
  t.throws(() => new SocketStream(null as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
  const s = new SocketStream()
  t.throws(() => s.setTimeout('1' as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
  t.throws(() => s.setTimeout(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any)
  t.throws(() => s.setTimeout(NaN), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' } as any)
  t.throws(() => s.setTimeout(10, 'cb' as any), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' } as any)
  t.throws(() => s.write(42 as any), { code: 'ERR_INVALID_ARG_TYPE' } as any)
  s.destroy()
  t.deepEqual(fdList(), before)
})

test.serial('no fd is left behind by streams (both modes, every way of closing)', async (t) => {
  for (const mode of MODES) {
    const r = new Reactor({ thread: mode.thread })
    t.teardown(() => r.close())
    const local: (() => void)[] = []
    const before = fdList()
    for (const close of ['end', 'destroy', 'destroy-error', 'peer-end', 'peer-reset'] as const) {
      for (const kind of ['v4', 'unix'] as PairKind[]) {
        const { stream, peer } = await streamPair(r, kind, local)
        stream.resume()
        stream.on('error', () => {})
        stream.write('x')
        await peer.waitText('x')
        if (close === 'end') stream.end() // the peer (allowHalfOpen false) answers our FIN with its own
        else if (close === 'destroy') stream.destroy()
        else if (close === 'destroy-error') stream.destroy(new Error('x'))
        else if (close === 'peer-end') peer.sock.end()
        else if (kind === 'unix') peer.sock.destroy() // no reset on UNIX sockets
        else peer.sock.resetAndDestroy()
        await within(new Promise((res) => (stream.destroyed ? res(null) : stream.once('close', res))), `close by ${close}`)
        await peer.waitClose()
      }
    }
    for (const c of local) c()
    await r.close()
    await waitUntil(() => JSON.stringify(fdList()) === JSON.stringify(before), () => `fds back to ${before} (now ${fdList()})`, 5000)
    t.deepEqual(fdList(), before)
  }
})
