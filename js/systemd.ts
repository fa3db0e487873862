// `systemd`: the service side of socket activation (sd_listen_fds_with_names), notification
// (sd_notify, with descriptors for the fd store) and the watchdog, without libsystemd. The
// protocol work is the core's (crates/core/src/systemd.rs); this file reads and clears the
// environment, which Node's `process.env` owns.
import { callNative, callNativeAt } from './errors'
import { binding } from './native'
import { arrayArgument, booleanArgument, checkFd, optionsArgument, stringArgument } from './validate'

/** `systemd.listenFds`'s options. */
export interface ListenFdsOptions {
  /** Remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from process.env (default true), so that
   *  child processes do not see them. */
  unsetEnvironment?: boolean | undefined
}

/** A descriptor systemd passed, as `systemd.listenFds` reports it. */
export interface ListenFd {
  /** 3, 4, ... */
  fd: number
  /** From LISTEN_FDNAMES (systemd's FileDescriptorName=), 'unknown' where missing. */
  name: string
  /** AddressFamily number; 0 for a descriptor that is not a socket. */
  family: number
  /** SocketType number; 0 for a descriptor that is not a socket. */
  type: number
  /** SO_ACCEPTCONN. */
  listening: boolean
  /** Whether the descriptor is a socket. systemd can pass FIFOs too; and when LISTEN_FDS
   *  overstates what was passed, the numbers past the real ones may be Node's own descriptors:
   *  close only the ones you adopted (closing Node's aborts the process). */
  isSocket: boolean
}

const LISTEN_VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const

let warnedPassedElsewhere = false

/**
 * The one hint when socket activation finds nothing because LISTEN_PID names another process:
 * the usual cause is a wrapper (npm start, tsx, nodemon) that systemd started and that spawned
 * node instead of exec'ing it, and otherwise listenFds() returns [] without a word. Once per
 * process, as a Warning with code 'REACTOR_SOCKET_LISTEN_PID'.
 */
function warnIfPassedElsewhere(listenPid: string | null): void {
  if (warnedPassedElsewhere || listenPid === null) return
  const other = callNative(() => binding.systemd.listenPidElsewhere(listenPid))
  if (other === null || other === undefined) return
  warnedPassedElsewhere = true
  process.emitWarning(
    `LISTEN_PID=${other} is not this process (${process.pid}): the sockets were passed to another process — ` +
      'a wrapper such as npm, tsx or nodemon? exec node directly',
    { type: 'ReactorSocketWarning', code: 'REACTOR_SOCKET_LISTEN_PID' },
  )
}

/**
 * The service side of systemd's socket activation (sd_listen_fds_with_names), notification
 * (sd_notify, with descriptors for the fd store) and watchdog, without libsystemd.
 */
export const systemd = Object.freeze({
  /**
   * The descriptors systemd (or any supervisor speaking its protocol) passed to this process,
   * made close-on-exec: none unless LISTEN_PID is this process's pid (when it names another
   * process, a warning says so, once: see warnIfPassedElsewhere). A malformed variable
   * throws an Error with code 'EINVAL'; the environment is cleared either way (unless
   * `unsetEnvironment` is false). The caller owns the descriptors.
   */
  listenFds(options: ListenFdsOptions = {}): ListenFd[] {
    const { unsetEnvironment = true } = optionsArgument(options, 'listenFds: options')
    booleanArgument(unsetEnvironment, 'listenFds: unsetEnvironment')
    const env = process.env
    try {
      const fds = callNative(() => binding.systemd.listenFds(env.LISTEN_PID ?? null, env.LISTEN_FDS ?? null, env.LISTEN_FDNAMES ?? null))
      if (fds.length === 0) warnIfPassedElsewhere(env.LISTEN_PID ?? null)
      return fds
    } finally {
      if (unsetEnvironment) for (const name of LISTEN_VARIABLES) delete env[name]
    }
  },

  /**
   * Sends `state` ('READY=1', 'STOPPING=1', 'STATUS=...', 'FDSTORE=1\nFDNAME=web', ...) as one
   * datagram to $NOTIFY_SOCKET, with `fds` attached. false when NOTIFY_SOCKET is unset. Never
   * waits: when the manager's queue is full it throws an Error with code 'EAGAIN' (nothing was
   * sent; send again later, e.g. on the next watchdog tick).
   */
  notify(state: string, fds: number[] = []): boolean {
    stringArgument(state, 'notify: state')
    for (const fd of arrayArgument(fds, 'notify: fds')) checkFd(fd, 'notify: each of fds')
    const socket = process.env.NOTIFY_SOCKET
    if (socket === undefined || socket === '') return false
    callNativeAt({ path: socket }, () => binding.systemd.notify(socket, state, fds))
    return true
  },

  /** The watchdog interval in ms (WATCHDOG_USEC) when WATCHDOG_PID is unset or ours, else null.
   *  Send 'WATCHDOG=1' at least this often (systemd suggests every half interval). */
  watchdogInterval(): number | null {
    const env = process.env
    const usec = callNative(() => binding.systemd.watchdogUsec(env.WATCHDOG_USEC ?? null, env.WATCHDOG_PID ?? null))
    return usec === null ? null : usec / 1000
  },
})
