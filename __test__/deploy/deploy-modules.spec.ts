// `systemd`, `handoff` and `Offer` reach both module systems as the very same objects.
import test from 'ava'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import * as esm from 'reactor-socket'

const NAMES = ['systemd', 'handoff', 'Offer'] as const

test('import and require() both see systemd, handoff and Offer, as the same objects', (t) => {
  const cjs = createRequire(path.join(process.cwd(), 'package.json'))('reactor-socket')
  for (const n of NAMES) {
    t.not((esm as any)[n], undefined, `import: ${n}`)
    t.is(cjs[n], (esm as any)[n], `${n} is the same object`)
  }
  t.is(typeof esm.systemd.listenFds, 'function')
  t.is(typeof esm.systemd.notify, 'function')
  t.is(typeof esm.systemd.watchdogInterval, 'function')
  t.is(typeof esm.handoff.offer, 'function')
  t.is(typeof esm.handoff.take, 'function')
})
