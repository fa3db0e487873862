// Raw socket fds made with the package's `sockets` helpers. Every fd made here is tracked and
// closed by `closeTracked()` at the end of the file (see fileTeardown in modes.ts).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { sockets } from 'reactor-socket'

const tracked = new Set<number>()
export function track(fd: number): number {
  tracked.add(fd)
  return fd
}
/** Closes a tracked fd now (and forgets it, so that the number is never closed twice). */
export function closeFd(fd: number) {
  tracked.delete(fd)
  sockets.close(fd)
}
/** Forget an fd that something else (e.g. a net.Socket) took ownership of. */
export const untrack = (fd: number) => tracked.delete(fd)
export function closeTracked() {
  for (const fd of tracked) {
    try {
      sockets.close(fd)
    } catch {
      // already gone
    }
  }
  tracked.clear()
}

export const listenTcp4 = (opts: Record<string, unknown> = {}) =>
  track(sockets.listenTcp({ host: '127.0.0.1', port: 0, ...opts }))
export const listenTcp6 = (opts: Record<string, unknown> = {}) =>
  track(sockets.listenTcp({ host: '::1', port: 0, ...opts }))
export const bindUdp4 = (host = '127.0.0.1') => track(sockets.bindUdp({ host, port: 0 }))
export const bindUdp6 = (host = '::1') => track(sockets.bindUdp({ host, port: 0 }))
export const portOf = (fd: number): number => (sockets.info(fd).local as any).port

let unixCounter = 0
export function tmpSockPath(tag = 's'): string {
  return path.join(os.tmpdir(), `rs-${process.pid}-${tag}-${++unixCounter}.sock`)
}
export function listenUnixFd(tag = 'u'): { fd: number; path: string } {
  const p = tmpSockPath(tag)
  try {
    fs.unlinkSync(p)
  } catch {}
  return { fd: track(sockets.listenUnix(p)), path: p }
}

/** A TCP fd that is connected (client side) but not listening: needs a listener to connect to. */
export function connectedTcp4(): { client: number; listener: number } {
  const listener = listenTcp4()
  const client = track(sockets.connectTcp('127.0.0.1', portOf(listener)))
  return { client, listener }
}
