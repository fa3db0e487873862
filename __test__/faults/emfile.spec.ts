// docs/guarantees.md: out of descriptors while accepting, the pending client is accepted and closed at
// once (a clean close for the peer), no protocol is built, the loop does not spin, and the port works
// again once descriptors are free. Runs in a child with a low RLIMIT_NOFILE.
import test from 'ava'
import { spawn } from 'node:child_process'
import {
  MODES,
  fixture,
  Child,
  nodeClient,
  rawClient,
  closeTracked,
  quietPeriod,
} from '../helpers.js'

const kids: Child[] = []
test.after.always(() => {
  kids.forEach((k) => k.kill())
  closeTracked()
})

for (const mode of MODES) {
  test(`[${mode.name}] EMFILE while accepting: the client is closed cleanly, no protocol, no spinning, recovers`, async (t) => {
    const c = new Child(
      spawn('/bin/sh', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, fixture('emfile.mjs'), mode.name], {
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    )
    kids.push(c)
    const port = Number(await c.line('FULL '))
    const c1 = rawClient(port)
    c.send('cpu-start\n')
    await c.line('CPUSTARTED')
    // measured over a second while it cannot accept: a spinning loop would burn it all
    await quietPeriod(1000, 'a busy loop in the child')
    c.send('cpu-end\n')
    const cpu = Number(await c.line('CPU '))
    t.log(`child CPU while out of descriptors: ${(cpu * 100).toFixed(1)}% of one core`)
    t.true(cpu < 0.5, `the loop does not spin (${cpu})`)
    await c1.waitClose()
    t.true(c1.ended, 'the peer sees a clean close (FIN), not a reset')
    t.is(c1.data.length, 0)
    c.send('stats\n')
    t.deepEqual(JSON.parse(await c.line('STATS ')), { built: 0 }, 'no protocol built')
    c.send('free\n')
    await c.line('FREED')
    const c2 = await nodeClient(port)
    c2.sock.write('back')
    await c2.waitText('back')
    c2.destroy()
    c.stdout = c.stdout.replace(/STATS .*\n/, '')
    c.send('stats\n')
    t.deepEqual(JSON.parse(await c.line('STATS ')), { built: 1 })
    c.send('quit\n')
    const res = await c.wait()
    t.is(res.code, 0, res.stderr)
  })
}
