// Waiting in tests: every wait has a deadline and says what it waited for when it runs out.

/** Resolves with p's value, or rejects when `ms` pass first (the test then fails with `what`). */
export function within<T>(p: Promise<T>, what: string, ms = 10000): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

const describe = (what: string | (() => string)) => (typeof what === 'function' ? what() : what)
const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `cond` (which may be async) every `step` ms until it holds; fails after `ms` with `what`. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  what: string | (() => string),
  ms = 10000,
  step = 5,
): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${describe(what)}`)
    await tick(step)
  }
}

/**
 * For checks that something does NOT happen: a bounded wait, long enough for the event to have
 * shown up had it been going to. `why` names what must stay absent; it documents the call site.
 * Wait first for what makes the event possible (bytes in the kernel, a marker delivered), so that
 * the period only has to cover the reactor's own reaction time.
 */
export function quietPeriod(ms: number, why: string): Promise<void> {
  void why
  return tick(ms)
}

/**
 * Samples `read` every `period` ms until two samples in a row are equal (and `accept` holds for
 * the value): the way to see that a flow has stopped, which no single event announces.
 */
export async function waitStable<T>(
  read: () => T | Promise<T>,
  what: string,
  { period, ms = 10000, accept = () => true }: { period: number; ms?: number; accept?: (v: T) => boolean },
): Promise<T> {
  const deadline = Date.now() + ms
  let prev = await read()
  for (;;) {
    await tick(period)
    const now = await read()
    if (now === prev && accept(now)) return now
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last ${String(now)})`)
    prev = now
  }
}

/** UDP may drop under load: send again every `every` ms until `cond` holds (bounded). */
export async function sendUntil(send: () => void, cond: () => boolean, what: string, ms = 10000, every = 100) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    send()
    const next = Date.now() + every
    while (!cond() && Date.now() < next) await tick(5)
  }
}

/** Drains the microtask queue a number of times without leaving the current macrotask. */
export async function microtasks(n = 50) {
  for (let i = 0; i < n; i++) await null
}

/**
 * Stays within the current macrotask but lets every microtask and process.nextTick queued so far
 * run: a promise that settles "no earlier than the next turn of the event loop" is still pending.
 */
export async function drainCurrentTurn() {
  for (let i = 0; i < 5; i++) {
    await microtasks(20)
    await new Promise<void>((r) => process.nextTick(r))
  }
  await microtasks(20)
}

/** Busy-waits (a deliberately slow callback). */
export function spin(us: number) {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000))
  while (process.hrtime.bigint() < end) {}
}
