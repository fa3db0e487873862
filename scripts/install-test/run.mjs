// Running commands for the install test: bounded in time, in an environment without the Rust
// toolchain and without the caller's npm settings.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const RUST_TOOLS = ['cargo', 'rustc', 'rustup']

/** A failed check: the message says what was expected and what happened. */
export class CheckFailed extends Error {}

export function check(condition, message) {
  if (!condition) throw new CheckFailed(message)
}

/**
 * The environment of a user without Rust: PATH without any folder that holds cargo, rustc or rustup
 * (this Node's folder first, so the same Node runs), none of the npm_* variables `npm run` sets, npm's
 * cache and user config inside `home` (an empty cache: anything npm would fetch fails offline).
 */
export function userEnv(home) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && !/^(CARGO|RUSTUP)_HOME$/.test(key)) env[key] = value
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '')
  const withoutRust = dirs.filter((dir) => !RUST_TOOLS.some((tool) => fs.existsSync(path.join(dir, tool))))
  env.PATH = [path.dirname(process.execPath), ...withoutRust].join(path.delimiter)
  fs.mkdirSync(path.join(home, 'npm-cache'), { recursive: true })
  fs.writeFileSync(path.join(home, 'npmrc'), '')
  env.npm_config_cache = path.join(home, 'npm-cache')
  env.npm_config_userconfig = path.join(home, 'npmrc')
  env.npm_config_update_notifier = 'false'
  env.npm_config_fund = 'false'
  env.npm_config_audit = 'false'
  return env
}

/** Whether `command` can be started with `env` (spawn finds it on env.PATH). */
export function onPath(command, env) {
  return spawnSync(command, ['--version'], { env, stdio: 'ignore' }).error === undefined
}

/** Runs a command to completion (killed after `timeoutMs`); returns its exit status and output. */
export function run(command, args, { cwd, env = process.env, timeoutMs = 30000 } = {}) {
  const res = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' })
  return {
    status: res.status,
    signal: res.signal,
    error: res.error,
    stdout: res.stdout ?? '',
    stderr: res.stderr ?? '',
    describe: () =>
      `\`${[command, ...args].join(' ')}\` in ${cwd ?? process.cwd()}: ` +
      (res.error ? String(res.error) : res.signal ? `killed by ${res.signal} after ${timeoutMs} ms` : `exit ${res.status}`) +
      `\n--- stdout\n${res.stdout ?? ''}\n--- stderr\n${res.stderr ?? ''}`,
  }
}

/** Runs a command that must succeed; returns its stdout. */
export function mustRun(command, args, options) {
  const res = run(command, args, options)
  check(res.status === 0, res.describe())
  return res.stdout
}
