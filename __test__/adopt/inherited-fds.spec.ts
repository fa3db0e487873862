// The systemd / supervisor case from docs/adopting.md "What it is, and why": a parent makes the socket, a child
// inherits it as fd 3, adopts it and serves; told to stop, the child exits 0 by itself. The parent's fd
// still listens afterwards (the child only closed its duplicate). Both reactor modes.
import test from 'ava'
import { spawn } from 'node:child_process'
import { sockets } from 'reactor-socket'
import {
  MODES,
  fixture,
  Child,
  listenTcp4,
  listenTcp6,
  listenUnixFd,
  bindUdp4,
  bindUdp6,
  portOf,
  nodeClient,
  udpPeer,
  closeFd,
  closeTracked,
  limiter,
} from '../helpers.js'

const slot = limiter(4)

const kids: Child[] = []
test.after.always(() => {
  for (const k of kids) k.kill()
  closeTracked()
})

function spawnWith(fd: number, kind: string, mode: string): Child {
  const c = new Child(
    spawn(process.execPath, [fixture('inherit-child.mjs'), kind, mode], { stdio: ['ignore', 'pipe', 'pipe', fd] }),
  )
  kids.push(c)
  return c
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`

  for (const kind of ['tcp', 'tcp6', 'unix'] as const) {
    test(`${tag} ${kind}: a child adopts an inherited listening fd 3, serves, and exits 0 when told`, (t) => slot(async () => {
      let fd: number
      let connect: () => ReturnType<typeof nodeClient>
      if (kind === 'unix') {
        const u = listenUnixFd('inh')
        fd = u.fd
        connect = () => nodeClient(u.path)
      } else {
        fd = kind === 'tcp' ? listenTcp4() : listenTcp6()
        const host = kind === 'tcp' ? '127.0.0.1' : '::1'
        connect = () => nodeClient(portOf(fd), host)
      }
      const c = spawnWith(fd, kind, mode.name)
      const ready = JSON.parse(await c.line('READY '))
      if (kind === 'unix') t.is(ready.name, (sockets.info(fd).local as any).name)
      else t.is(ready.port, portOf(fd))
      const peer = await connect()
      peer.sock.write('hello child')
      await peer.waitText('hello child')
      peer.sock.write('quit')
      await peer.waitText('bye')
      await peer.waitEnd()
      const res = await c.wait()
      t.is(res.signal, null)
      t.is(res.code, 0, res.stderr)
      t.true(sockets.info(fd).listening, "the parent's fd still listens")
      closeFd(fd)
    }))
  }

  for (const kind of ['udp', 'udp6'] as const) {
    test(`${tag} ${kind}: a child adopts an inherited UDP fd 3, echoes, and exits 0 when told`, (t) => slot(async () => {
      const fd = kind === 'udp' ? bindUdp4() : bindUdp6()
      const host = kind === 'udp' ? '127.0.0.1' : '::1'
      const c = spawnWith(fd, kind, mode.name)
      await c.line('READY ')
      const u = await udpPeer(kind === 'udp' ? 'udp4' : 'udp6')
      try {
        await u.send('ping', portOf(fd), host)
        await u.waitCount(1)
        t.is(u.got[0].data.toString(), 'ping')
        t.is(u.got[0].rinfo.port, portOf(fd))
        await u.send('quit', portOf(fd), host)
        const res = await c.wait()
        t.is(res.signal, null)
        t.is(res.code, 0, res.stderr)
      } finally {
        u.close()
      }
      closeFd(fd)
    }))
  }
}
