// Hostile input, round two: control messages besides SCM_RIGHTS on adopted UNIX connections.
// A listener with SO_PASSPIDFD (Linux ≥ 6.5) gets the sender's pidfd with every read, and one
// with SO_PASSCRED (systemd's PassCredentials=yes) its credentials; accepted connections inherit
// both. Every pidfd must be closed at once, and credentials must not push passed descriptors out
// of the receive buffer. The options are set by python3 on an inherited copy of the listener (the
// package has no API for them). Both reactor modes.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { Reactor, AddressFamily, sockets } from 'reactor-socket'
import {
  MODES,
  HAS_PYTHON,
  Rec,
  RecFactory,
  fileTeardown,
  listenUnixFd,
  closeFd,
  python,
  testIf,
  waitUntil,
  within,
  nodeClient,
} from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

/** SO_PASSPIDFD (include/uapi/asm-generic/socket.h). */
const SO_PASSPIDFD = 76
/** SO_PASSCRED. */
const SO_PASSCRED = 16

/** Whether this kernel has SO_PASSPIDFD (asked of python3 on a fresh socket). */
function kernelHasPassPidfd(): boolean {
  if (!HAS_PYTHON) return false
  const probe = `import socket\ns = socket.socket(socket.AF_UNIX)\ns.setsockopt(socket.SOL_SOCKET, ${SO_PASSPIDFD}, 1)`
  return spawnSync('python3', ['-c', probe]).status === 0
}
const HAS_PASSPIDFD = kernelHasPassPidfd()
const withPidfd = testIf(HAS_PASSPIDFD, HAS_PYTHON ? `kernel ${os.release()} has no SO_PASSPIDFD (Linux >= 6.5)` : 'python3 is missing')
const withPython = testIf(HAS_PYTHON, 'python3 is missing')

/** Turns on SOL_SOCKET options of the socket behind `fd`, through an inherited copy. */
async function enable(fd: number, ...options: number[]): Promise<void> {
  const sets = options.map((o) => `s.setsockopt(socket.SOL_SOCKET, ${o}, 1)`).join('\n')
  await python(`import socket\ns = socket.socket(fileno=3)\n${sets}\ns.detach()`, fd)
}

/** Open pidfds of this process. */
const pidfds = () =>
  fs.readdirSync('/proc/self/fd').filter((n) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${n}`).includes('pidfd')
    } catch {
      return false
    }
  }).length

class FdRec extends Rec {
  fds: number[] = []
  fileDescriptorReceived(fd: number) {
    this.fds.push(fd)
  }
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  withPidfd(`${tag} SO_PASSPIDFD listener: 40 reads on an accepted connection leave no pidfd open`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const listener = listenUnixFd('pidfd')
    await enable(listener.fd, SO_PASSPIDFD)
    const factory = new RecFactory(Rec)
    const port = r.adoptStreamPort(listener.fd, AddressFamily.UNIX, factory)
    const before = pidfds()
    const peer = await nodeClient(listener.path)
    cleanups.push(() => peer.destroy())
    await factory.waitBuilt(1)
    const p = factory.built[0] as Rec
    for (let i = 0; i < 40; i++) {
      peer.sock.write(`m${i};`)
      await p.waitText(`m${i};`)
    }
    t.is(p.lostReasons.length, 0, 'the connection stays up')
    t.is(pidfds(), before, 'every pidfd that came with a read was closed')
    peer.destroy()
    await p.waitLost()
    await port.stopListening()
    closeFd(listener.fd)
    fs.rmSync(listener.path, { force: true })
  })

  withPython(`${tag} SO_PASSCRED listener: 246 to 253 descriptors with one byte all arrive, and the byte too`, async (t) => {
    const r = new Reactor({ thread: mode.thread })
    reactors.push(r)
    const listener = listenUnixFd('passcred')
    await enable(listener.fd, SO_PASSCRED, ...(HAS_PASSPIDFD ? [SO_PASSPIDFD] : []))
    const factory = new RecFactory(FdRec)
    const port = r.adoptStreamPort(listener.fd, AddressFamily.UNIX, factory)
    const sender = (await within(r.connectUNIX(listener.path, new RecFactory(Rec)), 'connectUNIX')) as Rec
    await factory.waitBuilt(1)
    const receiver = factory.built[0] as FdRec
    const [x, y] = sockets.socketPair()
    let expected = 0
    for (const count of [246, 247, 250, 253]) {
      for (let i = 0; i < count; i++) sender.t.sendFileDescriptor(x)
      sender.t.write(String(count % 10))
      expected += count
      await waitUntil(
        () => receiver.fds.length === expected || receiver.lostReasons.length > 0,
        () => `${expected} descriptors (have ${receiver.fds.length})`,
      )
      t.deepEqual(receiver.lostReasons, [], `${count} descriptors: the connection is kept (no EMSGSIZE)`)
      if (receiver.lostReasons.length > 0) break
      t.is(receiver.fds.length, expected, `${count} descriptors arrived`)
    }
    await receiver.waitText('6703')
    t.is(receiver.text, '6703', 'every byte that carried descriptors arrived')
    for (const fd of receiver.fds) sockets.close(fd)
    sockets.close(x)
    sockets.close(y)
    sender.t.loseConnection()
    await receiver.waitLost()
    await port.stopListening()
    closeFd(listener.fd)
    fs.rmSync(listener.path, { force: true })
  })
}
