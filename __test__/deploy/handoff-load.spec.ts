// The handoff guarantee, end to end: the example server (examples/handoff/server.js) replaces
// itself 5 times in a row on SIGHUP while clients keep connecting (scripts/handoff-soak.mjs drives
// it and counts). None refused, none reset, every byte checked; every old process drains its
// connections and exits with no socket left open; the offer's path is gone at the end. Both
// reactor modes, one after the other (they share two cores with the load).
import test from 'ava'
import { MODES } from '../helpers.js'
// @ts-expect-error: a plain ES module without types
import { handoffUnderLoad, describe, isAlive } from '../../scripts/handoff-soak.mjs'

const HANDOFFS = 5
const pids = new Set<number>()
test.after.always(() => {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
})

for (const mode of MODES) {
  test.serial(`[${mode.name}] ${HANDOFFS} handoffs in a row under continuous load: none refused, none reset, every byte checked, old processes drain and exit`, async (t) => {
    t.timeout(90000)
    const r = await handoffUnderLoad({ thread: mode.thread, handoffs: HANDOFFS, settleMs: 1000, pids })
    t.log(describe(r))
    t.deepEqual(r.problems, [])
    t.is(r.counts.refused, 0)
    t.is(r.counts.reset, 0)
    t.is(r.counts.corrupted, 0)
    t.is(r.counts.completed, r.counts.attempts)
    t.true(r.counts.bytesChecked > 0)
    t.is(r.drained.length, HANDOFFS + 1)
    t.true(r.drained.every((d: { sockets: number }) => d.sockets === 0))
  })
}
