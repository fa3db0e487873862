// A panic in the binding must reach JS as an Error, never abort Node: every exported function is
// built with napi's catch_unwind. `checkPanicBoundary` panics on purpose; the check runs in a child
// process so that an abort (exit 134) would be seen as the failure it is.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

test('a panic inside the binding is thrown as an Error and the process goes on', (t) => {
  const script = `
    const binding = require(${JSON.stringify(path.join(process.cwd(), 'native/binding.js'))})
    try { binding.checkPanicBoundary(); console.log('no throw') }
    catch (e) { console.log('caught', e instanceof Error, String(e.message).includes('on purpose')) }
    console.log('still running')
  `
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 })
  t.is(child.status, 0, `exit ${child.status} signal ${child.signal}: ${child.stderr}`)
  t.regex(child.stdout, /caught true true\nstill running/)
})
