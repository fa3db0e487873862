// Both ways the reactor runs, and the per-file and per-test set-up that every spec file shares.
import test from 'ava'
import { Reactor } from 'reactor-socket'
import { within } from './waits.js'
import { closeTracked } from './raw-sockets.js'
import { settleFds, fdList, warmThreadPool } from './fds.js'
import { killChildren } from './children.js'

/** Both ways the reactor can run (docs/adopting.md, "Reactor options"); every behaviour holds in both. */
export const MODES = [
  { name: 'thread', thread: true },
  { name: 'no-thread', thread: false },
] as const
export type Mode = (typeof MODES)[number]

/**
 * The set-up and teardown spec files share: after the file's tests, kill the children `child()`
 * started, run the cleanups, close the reactors, close the fds the helpers tracked. Returns the
 * lists to register into. `warmThreadPool`: start libuv's pool first, for files that compare
 * thread counts or the fd table.
 */
export function fileTeardown(opts: { warmThreadPool?: boolean } = {}): {
  reactors: { close(): Promise<void> }[]
  cleanups: (() => void)[]
} {
  const reactors: { close(): Promise<void> }[] = []
  const cleanups: (() => void)[] = []
  if (opts.warmThreadPool) test.before(warmThreadPool)
  test.after.always(async () => {
    killChildren()
    for (const c of cleanups) c()
    for (const r of reactors) await r.close()
    closeTracked()
  })
  return { reactors, cleanups }
}

/**
 * A reactor of its own for one test, with what reaches onError collected. `finish()` closes it
 * and checks onError got exactly `expectReported` and that no fd opened since is left. The
 * teardown closes it too: ava's assertions throw, and a failed one must not leave it open.
 */
export function reactorHarness(t: { teardown(fn: () => unknown): void; deepEqual: any }, mode: Mode) {
  const before = fdList()
  const reported: unknown[] = []
  const r = new Reactor({ thread: mode.thread, onError: (e) => reported.push(e) })
  t.teardown(() => r.close())
  return {
    r,
    reported,
    before,
    async finish(expectReported: unknown[] = []) {
      await within(r.close(), 'reactor.close()')
      t.deepEqual(reported, expectReported, expectReported.length ? 'onError got exactly what was thrown' : 'nothing reported to onError')
      t.deepEqual(await settleFds(before), [], 'no fd left behind')
    },
  }
}
