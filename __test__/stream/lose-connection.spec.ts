// Writes made after loseConnection() in the same turn are still sent (as in Twisted, the close
// happens at the next reactor iteration): the 1 MiB + 'tail' case, where the kernel may take the
// whole 1 MiB at once (TCP on loopback) or queue most of it (UNIX). Both reactor modes.
import test from 'ava'
import { Reactor, ConnectionDone } from 'reactor-socket'
import { MODES, Rec, RecFactory, adoptablePair, closeFd, fileTeardown, type PairKind } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()
const MIB = Buffer.alloc(1 << 20, 0x61)

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)

  for (const kind of ['v4', 'unix'] as PairKind[]) {
    test(`[${mode.name}] ${kind}: write(1 MiB), loseConnection(), write('tail'): the peer gets all of it, then EOF`, async (t) => {
      const x = await adoptablePair(kind)
      cleanups.push(x.cleanup)
      const p: any = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Rec))
      closeFd(x.fd)
      p.t.write(MIB)
      p.t.loseConnection()
      t.true(p.t.disconnecting)
      p.t.write('tail')
      p.t.writeSequence(['-', 'end'])
      await x.peer.waitEnd()
      t.is(x.peer.data.length, MIB.length + 8)
      t.is(x.peer.data.subarray(MIB.length).toString(), 'tail-end')
      t.true((await p.waitLost()) instanceof ConnectionDone)
      p.t.write('after the close')
      t.is(p.lostReasons.length, 1)
    })
  }

  test(`[${mode.name}] writes in a later turn, after the close, are dropped`, async (t) => {
    const x = await adoptablePair('unix')
    cleanups.push(x.cleanup)
    const p: any = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Rec))
    closeFd(x.fd)
    p.t.write('one')
    p.t.loseConnection()
    await p.waitLost()
    p.t.write('two')
    await x.peer.waitEnd()
    t.is(x.peer.data.toString(), 'one')
  })
}
