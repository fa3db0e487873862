// docs/adopting.md "Lifetime": the package works in worker_threads (each worker its own reactor) and loads once
// per process without crashing at exit. Run in a child process so that its exit status is checked.
import test from 'ava'
import { MODES, fixture, child, killChildren } from '../helpers.js'

test.after.always(() => killChildren())

for (const mode of MODES) {
  test(`[${mode.name}] workers adopt, echo and exit cleanly, in a row, concurrently and terminated; the process exits 0`, async (t) => {
    const c = child(fixture('workers-main.mjs'), [mode.name])
    const res = await c.wait(40000)
    t.is(res.signal, null, `no signal (stderr: ${res.stderr})`)
    t.is(res.code, 0, res.stdout + res.stderr)
    t.regex(res.stdout, /^OK /m)
    t.notRegex(res.stdout, /WORKER ERROR|TIMEOUT/)
  })
}
