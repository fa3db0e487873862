// External tools some tests borrow (python3 makes sockets Node cannot; ss reads listen backlogs),
// and how a test that needs one is registered: run where the tool exists, listed as skipped (with
// the reason in its title) where it does not. Decided when the file loads, because ava cannot
// turn a running test into a skipped one.
import test, { type Implementation } from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { spawn } from 'node:child_process'
import { Child } from './children.js'

export function hasCommand(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK)
      return true
    } catch {}
  }
  return false
}

export const HAS_PYTHON = hasCommand('python3')
export const HAS_SS = hasCommand('ss')

/** `test` when `available`; otherwise `test.skip`, with `missing` (the reason) in the title. */
export function testIf(available: boolean, missing: string) {
  return (title: string, impl: Implementation<[]>) =>
    available ? test(title, impl) : test.skip(`${title} (skipped: ${missing})`, impl)
}

/** Runs python3 -c code with `fd` as its fd 3 (asynchronously: the event loop keeps running). */
export async function python(code: string, fd: number): Promise<string> {
  if (!HAS_PYTHON) throw new Error('python3 is not installed: register the test with testIf(HAS_PYTHON, …)')
  const c = new Child(spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'pipe', fd] }))
  const res = await c.wait(20000)
  if (res.code !== 0) throw new Error(`python3 failed: ${res.stderr}`)
  return res.stdout
}

/** SOL_SOCKET options of a socket, read by python3 through an inherited copy. */
export async function socketOptions(fd: number): Promise<{ reuseaddr: number; reuseport: number; rcvbuf: number }> {
  const code = [
    'import socket, json',
    's = socket.socket(fileno=3)',
    'print(json.dumps({"reuseaddr": s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),',
    '  "reuseport": s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),',
    '  "rcvbuf": s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}))',
    's.detach()',
  ].join('\n')
  return JSON.parse(await python(code, fd))
}

/** Pending SO_ERROR of a socket (read, and so cleared, by python3 through an inherited copy). */
export async function soError(fd: number): Promise<number> {
  const code = 'import socket\ns = socket.socket(fileno=3)\nprint(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))\ns.detach()'
  return Number((await python(code, fd)).trim())
}

/** The backlog (Send-Q) that `ss` reports for a listening TCP port or UNIX path. */
export async function listenBacklog(what: { port: number } | { path: string }): Promise<number> {
  if (!HAS_SS) throw new Error('ss is not installed: register the test with testIf(HAS_SS, …)')
  const args = 'port' in what ? ['-ltnH', `sport = :${what.port}`] : ['-lxH', `src ${what.path}`]
  const c = new Child(spawn('ss', args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  const res = await c.wait(10000)
  const line = res.stdout.trim().split('\n')[0] ?? ''
  const cols = line.split(/\s+/)
  // TCP: State Recv-Q Send-Q ...; UNIX: Netid State Recv-Q Send-Q ...
  const n = Number('port' in what ? cols[2] : cols[3])
  return Number.isFinite(n) ? n : NaN
}
