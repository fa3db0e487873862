// An echo server that systemd restarts without refusing a connection (echo-handoff.service:
// Type=notify, NotifyAccess=all, ExecReload=kill -HUP $MAINPID, with echo-handoff.socket).
//
// On SIGHUP it offers its listening sockets at a UNIX path in its RuntimeDirectory= (handoff) and
// starts its successor, this same script under the same node options. The successor takes the
// sockets, serves them, and tells systemd it is now the main process (MAINPID=) and ready, before
// it says ready() to its predecessor: only then does the predecessor stop accepting, let its
// connections finish, and exit. Had systemd not been told, the predecessor's exit would be the
// end of the service, and systemd would kill the successor with the rest of the cgroup.
//
// Each process prints one JSON line per step (READY, HANDOFF, DRAINED), for people and the tests.
// Environment: REACTOR_THREAD=0 drives the reactor from Node's own loop.
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { Reactor, Protocol, ServerFactory, SocketType, handoff, sockets, systemd } from 'reactor-socket'

const reactor = new Reactor({ thread: process.env.REACTOR_THREAD !== '0' })
const log = (event, fields = {}) => process.stdout.write(`${event} ${JSON.stringify({ pid: process.pid, ...fields })}\n`)

function fail(message) {
  process.stderr.write(`handoff-server: ${message}\n`)
  process.exit(1)
}

// A notification that cannot be delivered is worth a line, not a crash.
function notify(state) {
  try {
    return systemd.notify(state)
  } catch (err) {
    process.stderr.write(`notify ${JSON.stringify(state)}: ${err.message}\n`)
    return false
  }
}

let served = 0
class Echo extends Protocol {
  connectionMade() {
    served++
  }
  dataReceived(data) {
    this.transport.write(data)
  }
}

// RuntimeDirectory=: systemd makes it for the service's user alone (RuntimeDirectoryMode=0700), so
// no one else can offer sockets at the path or hold it.
const runtimeDirectory = process.env.RUNTIME_DIRECTORY?.split(':')[0]
if (!runtimeDirectory) fail('RUNTIME_DIRECTORY is unset: the unit needs RuntimeDirectory=')
const HANDOFF_PATH = path.join(runtimeDirectory, 'handoff.sock')
/** Set for a successor by its predecessor (and removed, so that its own successor starts clean). */
const successor = process.env.ECHO_HANDOFF === '1'
delete process.env.ECHO_HANDOFF

/** @type {{ name: string, port: import('reactor-socket').ListeningPort }[]} */
const ports = []

async function start() {
  // A successor takes the sockets from its predecessor; the first process gets them from systemd.
  const taken = successor ? await handoff.take(HANDOFF_PATH, { timeout: 10000 }) : null
  const passed = taken ? taken.listeners : systemd.listenFds()
  for (const { fd, name, family, type, listening } of passed) {
    if (type !== SocketType.STREAM || !listening) continue
    ports.push({ name, port: reactor.adoptStreamPort(fd, family, ServerFactory.forProtocol(Echo)) })
    sockets.close(fd) // the reactor keeps its own duplicate; port.duplicateFd() gives one back
  }
  if (ports.length === 0) fail('no listening stream socket was passed (run me from echo-handoff.socket)')
  if (taken) {
    // Before ready(): the predecessor exits after it, and systemd must know the new main process
    // by then. Needs NotifyAccess=all (this process is not the one systemd started).
    notify(`MAINPID=${process.pid}\nREADY=1\nSTATUS=serving (took over)`)
    await taken.ready()
  } else {
    notify('READY=1\nSTATUS=serving')
  }
  // WatchdogSec=: pet it while this process is the main one.
  const watchdog = systemd.watchdogInterval()
  if (watchdog !== null) setInterval(() => notify('WATCHDOG=1'), watchdog / 2).unref()
  log('READY', { took: taken !== null, ports: ports.map(({ name, port }) => ({ name, port: port.getHost().port })) })
}

let replacing = false
async function replace() {
  if (replacing) return
  replacing = true
  const listeners = ports.map(({ name, port }) => ({ name, fd: port.duplicateFd() }))
  let offer
  try {
    offer = handoff.offer(HANDOFF_PATH, listeners)
  } finally {
    for (const { fd } of listeners) sockets.close(fd) // the offer holds its own duplicates
  }
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, ECHO_HANDOFF: '1' }
  delete env.WATCHDOG_PID // it names this process; the successor pets the watchdog as the new main one
  // The same script under the same node options (a loader such as tsx, --max-old-space-size, ...).
  const next = spawn(process.execPath, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], { stdio: 'inherit', env })
  log('HANDOFF', { successor: next.pid })
  // A successor that dies before it is ready leaves this process serving, as if nothing happened.
  const exited = new Promise((resolve) => next.once('exit', () => resolve('failed')))
  const outcome = await Promise.race([offer.taken.then(() => 'taken', () => 'failed'), exited])
  next.unref()
  if (outcome !== 'taken') {
    offer.close()
    replacing = false
    log('HANDOFF_FAILED')
    return
  }
  await stop()
}

/** Accepts nothing more, lets the connections finish (10 s at most), and lets the process end. */
let stopped = null
function stop() {
  stopped ??= (async () => {
    await Promise.all(ports.map(({ port }) => port.drain({ deadline: 10000 })))
    await reactor.close()
    log('DRAINED', { served })
  })()
  return stopped
}

process.on('SIGHUP', () => {
  replace().catch((err) => {
    log('ERROR', { message: err.message })
    process.exitCode = 1
  })
})
process.once('SIGTERM', () => {
  notify('STOPPING=1')
  void stop()
})

start().catch((err) => fail(err.stack))
