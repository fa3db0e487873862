// kTLS: whether this kernel can take TLS records over is probed once (setsockopt TCP_ULP "tls"
// on a loopback connection) and told by tlsSupport(); the stats say which path each session took.
// This machine's kernel has no TLS ULP, and the hand-off itself is not implemented: the kTLS test
// is skipped with the kernel's own reason (or, on a kernel that has the ULP, with that one).
import test from 'ava'
import { Reactor, tlsSupport } from 'reactor-socket'
import { MODES, Rec, RecFactory, fileTeardown, testIf, waitUntil } from '../helpers.js'
import { nodeTls, serverTls, tlsMaterial, tlsPort, withOpenssl } from './tls-helpers.js'

const { reactors, cleanups } = fileTeardown()
const material = tlsMaterial()
const support = tlsSupport()

test('tlsSupport() answers once and says why kTLS is not there', (t) => {
  t.is(typeof support.ktls, 'boolean')
  t.is(support.ktls, support.ktlsReason === '', support.ktlsReason)
  t.deepEqual(tlsSupport(), support, 'the same answer (probed once)')
  if (!support.ktls) t.regex(support.ktlsReason, /TCP_ULP/)
})

const KTLS_HANDOFF_IMPLEMENTED = false
testIf(support.ktls && KTLS_HANDOFF_IMPLEMENTED, support.ktls ? 'the kTLS hand-off is not implemented' : support.ktlsReason)(
  'a session is handed to the kernel after its handshake (tlsSessionsKtls counts it)',
  async (t) => {
    t.fail('not reached where the kernel has no TLS ULP')
  },
)

for (const mode of MODES) {
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)
  withOpenssl(`[${mode.name}] every session takes the userspace path here, and the stats say so`, async (t) => {
    const m = material.get()
    const { port, at, factory } = tlsPort(r, serverTls(m), new RecFactory(Rec))
    cleanups.push(() => void port.stopListening())
    const before = r.stats()
    const a = await nodeTls(at, { ca: m.ca })
    if (!a.ok) return t.fail(String(a.error))
    await waitUntil(() => factory.built.length === 1, 'the connection')
    const after = r.stats()
    t.is(after.tlsSessionsUserspace - before.tlsSessionsUserspace, 1)
    t.is(after.tlsSessionsKtls, 0)
    a.socket.destroy()
  })
}
