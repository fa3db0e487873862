// Pausing after the core has read the peer's FIN, but before it was delivered, still pauses: the EOF
// waits for resumeProducing() (the data and FIN arrive in one batch here, so the pause happens
// between them). Found by the proxy soak in the threaded mode. Both reactor modes.
import test from 'ava'
import { Reactor, ConnectionDone } from 'reactor-socket'
import { MODES, Rec, RecFactory, adoptablePair, closeFd, fileTeardown, quietPeriod, waitUntil } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  test(`[${mode.name}] pauseProducing() in dataReceived holds the EOF that is already read`, async (t) => {
    const x = await adoptablePair('unix')
    cleanups.push(x.cleanup)
    x.peer.sock.end('all of it') // data and FIN are in the kernel before the adoption
    await x.peer.waitDelivered()
    class Pauser extends Rec {
      dataReceived(d: Buffer) {
        super.dataReceived(d)
        this.t.pauseProducing()
      }
    }
    const p: any = r.adoptStreamConnection(x.fd, x.family, new RecFactory(Pauser))
    closeFd(x.fd)
    await waitUntil(() => p.text === 'all of it', 'the data')
    await quietPeriod(100, 'the EOF must not be delivered while paused')
    t.is(p.lostReasons.length, 0)
    t.true(p.t.connected)
    p.t.resumeProducing()
    t.true((await p.waitLost()) instanceof ConnectionDone)
  })
}
