// Half-close, both directions (docs/adopting.md "adoptStreamConnection"): readConnectionLost on the peer's EOF,
// loseWriteConnection → FIN after pending data then writeConnectionLost, and
// connectionLost(ConnectionDone) once both are closed. Both reactor modes; TCP and UNIX.
import test from 'ava'
import * as crypto from 'node:crypto'
import { Reactor, Protocol, ConnectionDone } from 'reactor-socket'
import {
  MODES,
  Rec,
  fileTeardown,
  within,
  waitUntil,
  type PairKind,
  adoptedConnection,
  quietPeriod,
} from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

/** Records half-close calls too. */
class HalfRec extends Rec {
  readConnectionLost() {
    this.log.push('readLost')
  }
  writeConnectionLost() {
    this.log.push('writeLost')
  }
}

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  const tag = `[${mode.name}]`

  const conn = (kind: PairKind, P: typeof Rec) => adoptedConnection(r, kind, cleanups, P, { allowHalfOpen: true })

  for (const kind of ['v4', 'unix'] as const) {
    test(`${tag} ${kind}: peer EOF → readConnectionLost (not connectionLost); the protocol keeps writing`, async (t) => {
      class P extends HalfRec {
        readConnectionLost() {
          super.readConnectionLost()
          this.t.write('after-eof:' + this.text)
        }
      }
      const { p, peer } = await conn(kind, P)
      peer.sock.write('req')
      peer.sock.end()
      await waitUntil(() => p.log.includes('readLost'), 'readConnectionLost')
      await peer.waitText('after-eof:req')
      t.deepEqual(p.log, ['made', 'data', 'readLost'])
      await quietPeriod(100, 'a connectionLost while the write side is open')
      t.is(p.lostReasons.length, 0, 'no connectionLost while the write side is open')
      t.true(p.t.connected)
      p.t.write('+more')
      await peer.waitText('after-eof:req+more')
      p.t.loseConnection()
      await peer.waitEnd()
      const reason = await within(p.waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionDone)
      t.is(p.lostReasons.length, 1)
    })

    test(`${tag} ${kind}: after readConnectionLost, loseWriteConnection closes both: writeConnectionLost then connectionLost(ConnectionDone)`, async (t) => {
      class P extends HalfRec {
        readConnectionLost() {
          super.readConnectionLost()
          this.t.write('bye')
          this.t.loseWriteConnection()
        }
      }
      const { p, peer } = await conn(kind, P)
      peer.sock.end('last words')
      await peer.waitEnd()
      t.is(peer.text, 'bye')
      const reason = await within(p.waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionDone)
      t.deepEqual(p.log, ['made', 'data', 'readLost', 'writeLost', 'lost'])
      t.is(p.text, 'last words')
    })

    test(`${tag} ${kind}: both directions closed without writeConnectionLost defined → connectionLost(ConnectionDone) follows`, async (t) => {
      class P extends Rec {
        readConnectionLost() {
          this.log.push('readLost')
          this.t.loseWriteConnection()
        }
      }
      t.false('writeConnectionLost' in P.prototype)
      const { p, peer } = await conn(kind, P)
      peer.sock.end()
      await peer.waitEnd()
      const reason = await within(p.waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionDone)
      t.deepEqual(p.log, ['made', 'readLost', 'lost'])
    })

    test(`${tag} ${kind}: loseWriteConnection first: FIN after pending data, writeConnectionLost, later writes dropped, reading goes on`, async (t) => {
      const { p, peer } = await conn(kind, HalfRec)
      p.t.write('part1')
      p.t.loseWriteConnection()
      t.notThrows(() => p.t.write('dropped'))
      await peer.waitEnd()
      t.is(peer.text, 'part1')
      await waitUntil(() => p.log.includes('writeLost'), 'writeConnectionLost')
      t.is(p.lostReasons.length, 0)
      peer.sock.write('still reading')
      await p.waitText('still reading')
      peer.sock.end()
      const reason = await within(p.waitLost(), 'connectionLost')
      t.true(reason instanceof ConnectionDone)
      t.deepEqual(p.log, ['made', 'writeLost', 'data', 'readLost', 'lost'])
      t.is(peer.text, 'part1')
    })
  }

  test(`${tag} loseWriteConnection with a large pending buffer: the FIN comes after all of it`, async (t) => {
    const { p, peer } = await conn('unix', HalfRec)
    peer.sock.pause()
    const big = crypto.randomBytes(1024 * 1024)
    p.t.write(big)
    t.true(p.t.bufferSize > 0)
    p.t.loseWriteConnection()
    t.notThrows(() => p.t.write('dropped'))
    peer.sock.resume()
    await peer.waitEnd(10000)
    t.true(peer.data.equals(big))
    await waitUntil(() => p.log.includes('writeLost'), 'writeConnectionLost')
    peer.sock.end()
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
  })

  test(`${tag} a protocol without readConnectionLost: loseWriteConnection, then peer EOF → connectionLost(ConnectionDone)`, async (t) => {
    t.false('readConnectionLost' in Protocol.prototype)
    t.false('writeConnectionLost' in Protocol.prototype)
    const { p, peer } = await conn('v4', Rec)
    p.t.loseWriteConnection()
    await peer.waitEnd()
    peer.sock.write('x')
    await p.waitText('x')
    peer.sock.end()
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
    t.deepEqual(p.log, ['made', 'data', 'lost'])
  })

  test(`${tag} a protocol without readConnectionLost gets connectionLost on peer EOF (no half-close)`, async (t) => {
    const { p, peer } = await conn('v4', Rec)
    peer.sock.end('only')
    t.true((await within(p.waitLost(), 'lost')) instanceof ConnectionDone)
    t.is(p.text, 'only')
    await peer.waitEnd()
  })
}
