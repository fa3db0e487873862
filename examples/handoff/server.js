'use strict'
// A TCP echo server that replaces itself without refusing a connection. On SIGHUP it offers its
// listening socket at a UNIX path (handoff.offer) and starts its successor (this same script,
// under the same node options); the successor takes the socket (handoff.take), serves it, and
// calls ready(); then this process stops its port, lets its open connections finish, and exits.
// The socket itself never closes, so connection attempts keep being accepted, by one process or
// the other. (Under systemd, and in ESM: examples/systemd-restart/handoff-server.mjs.)
//
//   node server.js [--port 8080] [--host 127.0.0.1] [--path <handoff socket>] [--no-thread]
//   kill -HUP <pid>      # replace the running server
//
// The handoff socket's directory must not be writable by other users: whoever can create the
// path first could offer its own sockets (take() refuses offers of other uids) or hold the path.
// The default is $XDG_RUNTIME_DIR/echo-handoff.sock (systemd makes that directory 0700 for each
// user), else echo-handoff.sock in a directory of the temporary folder that this script creates
// 0700 (and refuses to use when it is not ours alone).
//
// The first process finds no offer at the path and makes its own socket. Each process prints
// one line per step (READY, HANDOFF, DRAINED) as JSON, for people and for the tests.
const { spawn } = require('node:child_process')
const os = require('node:os')
const path = require('node:path')
const { Reactor, AddressFamily, ServerFactory, Protocol, handoff, sockets } = require('../..')

const args = parseArgs(process.argv.slice(2))
const reactor = new Reactor({ thread: !args.noThread })
const generation = Number(process.env.ECHO_GENERATION ?? 1)
const log = (event, fields = {}) =>
  process.stdout.write(`${event} ${JSON.stringify({ pid: process.pid, generation, ...fields })}\n`)

const open = new Set()
let served = 0

class Echo extends Protocol {
  connectionMade() {
    open.add(this)
    served++
  }
  dataReceived(data) {
    this.transport.write(data)
  }
  connectionLost() {
    open.delete(this)
    if (draining && open.size === 0) finish()
  }
}

let port = null
let listenFd = -1
let draining = false

async function start() {
  let taken = null
  try {
    taken = await handoff.take(args.path, { timeout: 10000 })
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'ECONNREFUSED') throw err
  }
  if (taken) {
    listenFd = taken.listeners.find((l) => l.name === 'echo').fd
    for (const l of taken.listeners) if (l.fd !== listenFd) sockets.close(l.fd)
  } else {
    listenFd = sockets.listenTcp({ host: args.host, port: args.port, backlog: 1024 })
  }
  const family = sockets.info(listenFd).family
  port = reactor.adoptStreamPort(listenFd, family, ServerFactory.forProtocol(Echo))
  // Keep our own fd: it is what we offer to the next process (the reactor has its duplicate).
  if (taken) await taken.ready()
  log('READY', { port: port.getHost().port, took: taken !== null, path: args.path })
}

let replacing = false
async function replace() {
  if (replacing || draining) return
  replacing = true
  const offer = handoff.offer(args.path, [{ name: 'echo', fd: listenFd }])
  // This same script under the same node options (a loader such as `--import tsx`, memory
  // limits, ...): process.argv[1] is the script as node was given it, in CommonJS and ESM alike.
  const successor = spawn(process.execPath, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ECHO_GENERATION: String(generation + 1) },
  })
  log('HANDOFF', { successor: successor.pid })
  // A successor that dies before it is ready leaves us serving, as if nothing happened.
  const failed = new Promise((resolve) => successor.once('exit', resolve))
  const outcome = await Promise.race([offer.taken.then(() => 'taken'), failed.then(() => 'failed')])
  successor.unref()
  if (outcome !== 'taken') {
    offer.close()
    replacing = false
    log('HANDOFF_FAILED')
    return
  }
  draining = true
  await port.stopListening() // the socket stays open in the successor
  sockets.close(listenFd)
  if (open.size === 0) finish()
}

let finished = false
async function finish() {
  if (finished) return
  finished = true
  await reactor.close()
  log('DRAINED', { served, sockets: openSockets() })
}

/** Sockets this process still has open besides stdio (to show that nothing is left behind). */
function openSockets() {
  const fs = require('node:fs')
  let n = 0
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    if (Number(fd) <= 2) continue // stdio may be socketpairs (Node's child_process pipes)
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++
    } catch {}
  }
  return n
}

process.on('SIGHUP', () => {
  replace().catch((err) => {
    log('ERROR', { message: err.message })
    process.exitCode = 1
  })
})
process.once('SIGTERM', async () => {
  draining = true
  if (port) await port.stopListening()
  if (listenFd >= 0) sockets.close(listenFd)
  for (const p of open) p.transport.loseConnection()
  if (open.size === 0) finish()
})

function parseArgs(argv) {
  const out = { host: '127.0.0.1', port: 8080, path: null, noThread: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--port') out.port = Number(argv[++i])
    else if (a === '--host') out.host = argv[++i]
    else if (a === '--path') out.path = argv[++i]
    else if (a === '--no-thread') out.noThread = true
    else throw new Error(`unknown argument ${a}`)
  }
  out.path ??= defaultHandoffPath()
  return out
}

/** $XDG_RUNTIME_DIR/echo-handoff.sock, else a socket in a 0700 directory of our own in the
 *  temporary folder (never the temporary folder itself: anyone may create files there). */
function defaultHandoffPath() {
  const fs = require('node:fs')
  const runtime = process.env.XDG_RUNTIME_DIR
  const dir = runtime && path.isAbsolute(runtime) ? runtime : path.join(os.tmpdir(), `echo-handoff-${process.getuid()}`)
  try {
    fs.mkdirSync(dir, { mode: 0o700 })
  } catch (err) {
    if (err.code !== 'EEXIST') throw err
  }
  // A directory someone else made, or one others may write to, could hold their socket at our
  // path: refuse it rather than trust it.
  const st = fs.lstatSync(dir)
  if (!st.isDirectory() || st.uid !== process.getuid() || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory of uid ${process.getuid()} that no one else can write to (use --path)`)
  }
  return path.join(dir, 'echo-handoff.sock')
}

start().catch((err) => {
  process.stderr.write(`echo server: ${err.stack}\n`)
  process.exit(1)
})
