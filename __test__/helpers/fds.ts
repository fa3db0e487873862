// The descriptors and threads of this process, read from /proc: what leak checks compare.
import * as fs from 'node:fs'
import { waitUntil } from './waits.js'

/**
 * The fds of this process and what they point at. Regular files and directories other than
 * /dev/null are left out: the TypeScript loader (tsx) opens and closes cache files on its own
 * thread at any moment, and the reactor never opens a path (only sockets, epoll, eventfd, and
 * perhaps a reserve /dev/null).
 */
export function fdTable(): Map<number, string> {
  const m = new Map<number, string>()
  for (const n of fs.readdirSync('/proc/self/fd')) {
    try {
      const link = fs.readlinkSync(`/proc/self/fd/${n}`)
      if (link.startsWith('/') && link !== '/dev/null') continue
      m.set(Number(n), link)
    } catch {
      // the directory's own fd, closed by now
    }
  }
  return m
}

export function fdList(): string[] {
  return [...fdTable().entries()].sort((a, b) => a[0] - b[0]).map(([n, l]) => `${n} -> ${l}`)
}

/** Entries of the fd table (sockets, pipes, anon inodes, /dev/null) that were not in `before`. */
export const addedFds = (before: string[]) => fdList().filter((x) => !before.includes(x))

/** Waits (bounded) until no fd beyond `before` is open; returns what is still extra. */
export async function settleFds(before: string[], ms = 2000): Promise<string[]> {
  await waitUntil(() => addedFds(before).length === 0, 'the fd table to settle', ms).catch(() => {})
  return addedFds(before)
}

export const taskCount = () => fs.readdirSync('/proc/self/task').length

export const linkOf = (fd: number) => fs.readlinkSync(`/proc/self/fd/${fd}`)

/** The fds of this process that point at `link` (e.g. the same socket, after the caller's fd closed). */
export function fdsWithLink(link: string): number[] {
  return [...fdTable().entries()].filter(([, l]) => l === link).map(([n]) => n)
}

export function isCloexec(fd: number): boolean {
  const txt = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
  const m = /flags:\s*([0-7]+)/.exec(txt)
  if (!m) throw new Error('no flags in fdinfo')
  return (parseInt(m[1], 8) & 0o2000000) !== 0
}

/** A closed fd number (open then close one). */
export function closedFd(): number {
  const fd = fs.openSync('/dev/null', 'r')
  fs.closeSync(fd)
  return fd
}

/** Starts libuv's thread pool so that later thread counts are stable. */
export async function warmThreadPool() {
  await Promise.all([1, 2, 3, 4, 5].map(() => fs.promises.stat('/')))
}
