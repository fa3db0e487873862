// Child processes: a wrapper that collects their output and exit, and the Node fixtures of
// __test__/fixtures (those `child()` starts are killed at the end of the file).
import * as path from 'node:path'
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { within, waitUntil } from './waits.js'

// ava runs every test file with the project directory as its working directory
export const fixture = (name: string) => path.join(process.cwd(), '__test__', 'fixtures', name)

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export class Child {
  stdout = ''
  stderr = ''
  readonly exited: Promise<ChildResult>
  constructor(public proc: ChildProcess) {
    proc.stdout?.setEncoding('utf8')
    proc.stdout?.on('data', (d: string) => (this.stdout += d))
    proc.stderr?.setEncoding('utf8')
    proc.stderr?.on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) =>
      proc.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })),
    )
  }
  get alive() {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }
  /** Waits for a line on stdout that starts with `prefix`; returns the rest of that line. */
  async line(prefix: string, ms = 10000): Promise<string> {
    let found: string | undefined
    await waitUntil(
      () => {
        for (const l of this.stdout.split('\n')) {
          if (l.startsWith(prefix)) {
            found = l.slice(prefix.length).trim()
            return true
          }
        }
        if (!this.alive) throw new Error(`child exited before printing ${prefix}: ${this.stdout}\n${this.stderr}`)
        return false
      },
      `child line ${prefix}`,
      ms,
    )
    return found!
  }
  send(s: string) {
    this.proc.stdin?.write(s)
  }
  async wait(ms = 15000): Promise<ChildResult> {
    try {
      return await within(this.exited, 'child exit', ms)
    } catch (e) {
      this.kill()
      throw new Error(`${(e as Error).message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`)
    }
  }
  kill() {
    if (this.alive) this.proc.kill('SIGKILL')
  }
}

const children = new Set<Child>()
/** Runs a Node script; killChildren() kills whatever is left of it at the end of the file. */
export function child(file: string, args: string[] = [], opts: SpawnOptions = {}): Child {
  const c = new Child(spawn(process.execPath, [file, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...opts }))
  children.add(c)
  return c
}
export function killChildren() {
  for (const c of children) c.kill()
}

/** Limits how many test bodies run at once (child-process tests: avoid starving 2 cores). */
export function limiter(n: number) {
  let active = 0
  const queue: (() => void)[] = []
  return async function run<T>(fn: () => Promise<T>): Promise<T> {
    if (active >= n) await new Promise<void>((r) => queue.push(r))
    active++
    try {
      return await fn()
    } finally {
      active--
      queue.shift()?.()
    }
  }
}
