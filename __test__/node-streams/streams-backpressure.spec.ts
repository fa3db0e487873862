// SocketStream backpressure, both ways. Writing: write() returns false while the transport holds
// more than writableHighWaterMark, and 'drain' follows once it drained. Reading: a stream nobody
// reads (or a slow reader) pauses the transport, so the peer's kernel buffers fill and its writes
// back up, while this side's memory stays bounded; every byte still arrives, in order.
// Both reactor modes.
import test from 'ava'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as crypto from 'node:crypto'
import { Reactor } from 'reactor-socket'
import { MODES, fileTeardown, quietPeriod, waitStable, within } from '../helpers.js'
import { MiB, patternBytes, sha256, streamPair } from './streams-helpers.js'

const { reactors, cleanups } = fileTeardown()

const DATA = patternBytes(32 * MiB, 9)
const DATA_HASH = sha256(DATA)

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  for (const hwm of [16 * 1024, 1 * MiB]) {
    test(`${tag} write() returns false once the transport holds more than writableHighWaterMark (${hwm}); 'drain' follows`, async (t) => {
      const { stream, peer } = await streamPair(r, 'v4', cleanups, { writableHighWaterMark: hwm })
      t.is(stream.writableHighWaterMark, hwm)
      peer.sock.pause() // the peer reads nothing: the kernel's buffers fill, then the transport's queue
      const chunk = 64 * 1024
      let off = 0
      let accepted = true
      while (accepted && off < DATA.length) {
        accepted = stream.write(DATA.subarray(off, off + chunk))
        off += chunk
      }
      t.false(accepted, 'write() said to wait before 32 MiB were written')
      const queued = stream.transport!.bufferSize
      t.true(queued > hwm, `the transport holds more than the mark (${queued} > ${hwm})`)
      t.true(queued <= hwm + chunk, `and not much more: writes wait in the stream (${queued})`)
      t.log(`write() returned false after ${off} bytes, with ${queued} queued in the transport`)
      t.true(stream.writableLength >= hwm || stream.writableNeedDrain)
      // The rest is written on each 'drain' while the peer reads.
      let drains = 0
      const done = (async () => {
        while (off < DATA.length) {
          await within(new Promise((res) => stream.once('drain', res)), "'drain'", 20000)
          drains++
          do {
            accepted = stream.write(DATA.subarray(off, off + chunk))
            off += chunk
          } while (accepted && off < DATA.length)
        }
        stream.end()
      })()
      peer.sock.resume()
      await within(done, 'all writes', 30000)
      await peer.waitEnd(30000)
      t.true(drains > 0)
      t.is(peer.data.length, DATA.length)
      t.is(sha256(peer.data), DATA_HASH, 'every byte arrived, in order')
    })
  }

  test(`${tag} a stream nobody reads pauses the transport: the peer backs up, memory stays bounded`, async (t) => {
    const { stream, peer } = await streamPair(r, 'v4', cleanups)
    peer.sock.write(DATA) // Node queues what the kernel does not take
    peer.sock.end()
    // The peer stops making progress: its own write queue stays full because we do not read.
    await waitStable(() => peer.sock.writableLength, 'the peer to back up', { period: 100, ms: 20000, accept: (n) => n > 0 })
    const readSoFar = stream.bytesRead
    await quietPeriod(200, 'more bytes coming in while nobody reads')
    t.is(stream.bytesRead, readSoFar, 'the transport stopped reading')
    t.true(peer.sock.writableLength > 4 * MiB, `the peer still holds ${peer.sock.writableLength} bytes`)
    // What this side holds: the readable buffer (up to its mark) plus at most a batch or two that
    // the core had read before the pause took effect.
    t.true(stream.readableLength <= stream.readableHighWaterMark + 2 * MiB, `buffered ${stream.readableLength}`)
    t.true(readSoFar < 4 * MiB, `read before the pause: ${readSoFar}`)
    t.log(`paused after ${readSoFar} bytes; buffered ${stream.readableLength}; the peer holds ${peer.sock.writableLength}`)
    // Now read: everything arrives, in order.
    const hash = crypto.createHash('sha256')
    await within(pipeline(stream, hash), 'the whole stream', 30000)
    t.is(hash.digest('hex'), DATA_HASH)
    t.is(stream.bytesRead, DATA.length)
  })

  test(`${tag} a slow reader keeps the readable buffer bounded; every byte arrives in order`, async (t) => {
    const { stream, peer } = await streamPair(r, 'unix', cleanups)
    const data = DATA.subarray(0, 8 * MiB)
    let maxBuffered = 0
    const hash = crypto.createHash('sha256')
    let n = 0
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        maxBuffered = Math.max(maxBuffered, stream.readableLength)
        hash.update(chunk)
        // Every 8th chunk takes a timer tick: a reader much slower than the peer.
        if (++n % 8 === 0) setTimeout(cb, 1)
        else cb()
      },
    })
    peer.sock.end(data)
    await within(pipeline(stream, slow), 'the slow reader', 60000)
    t.is(hash.digest('hex'), sha256(data))
    t.true(maxBuffered <= stream.readableHighWaterMark + 2 * MiB, `the readable side held at most ${maxBuffered} bytes`)
    t.log(`the readable side held at most ${maxBuffered} bytes`)
  })
}
