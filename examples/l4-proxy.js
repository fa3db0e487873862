'use strict'
// An L4 (TCP) proxy at the edge, native end to end: the core accepts, connects to an upstream and
// relays, with no JS per connection. It takes its listening socket from systemd (socket
// activation), from its predecessor (a handoff on SIGHUP), or makes one; sends the client's
// address to the upstream as a PROXY v2 header; limits connections in total and per source; and
// on SIGHUP replaces itself without refusing a connection: the successor takes the socket, this
// process drains (idle sessions close, active ones finish) and exits.
//
//   node examples/l4-proxy.js --upstream 127.0.0.1:6379 [--upstream 127.0.0.1:6380 ...]
//        [--listen 127.0.0.1:7000] [--path <handoff socket>] [--max-connections 4000]
//        [--per-source 64] [--proxy-protocol] [--no-send-proxy] [--no-thread]
//   kill -HUP <pid>     # replace the running proxy (zero downtime)
//   kill -TERM <pid>    # drain and exit
//
// Under systemd: a .socket unit with ListenStream=7000 and FileDescriptorName=proxy, and a .service
// with Type=notify, NotifyAccess=all (the successor reports MAINPID=) and ExecStart=node
// /path/to/l4-proxy.js --upstream ... (exec node directly: a wrapper changes the pid systemd checks).
//
// It prints one JSON line per step (READY, HANDOFF, DRAINED) for people and for the tests.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Reactor, handoff, sockets, systemd } = require('..')

const args = parseArgs(process.argv.slice(2))
const reactor = new Reactor({ thread: !args.noThread })
const generation = Number(process.env.L4_GENERATION ?? 1)
const log = (event, fields = {}) => process.stdout.write(`${event} ${JSON.stringify({ pid: process.pid, generation, ...fields })}\n`)

let port = null
let listenFd = -1
let leaving = false

/** The listening socket: a predecessor's, systemd's, or a new one. `source` says which. */
async function listeningSocket() {
  try {
    const taken = await handoff.take(args.path, { timeout: 10_000 })
    const fd = taken.listeners.find((l) => l.name === 'proxy').fd
    for (const l of taken.listeners) if (l.fd !== fd) sockets.close(l.fd)
    return { fd, source: 'handoff', ready: () => taken.ready() }
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'ECONNREFUSED') throw err
  }
  const activated = systemd.listenFds()
  const mine = activated.find((e) => e.name === 'proxy' && e.isSocket) ?? activated.find((e) => e.isSocket && e.listening)
  for (const e of activated) if (e !== mine && e.isSocket) sockets.close(e.fd) // only what we use
  if (mine) return { fd: mine.fd, source: 'systemd', ready: async () => {} }
  const [host, portText] = splitHostPort(args.listen)
  return { fd: sockets.listenTcp({ host, port: Number(portText), backlog: 4096 }), source: 'own', ready: async () => {} }
}

async function start() {
  const { fd, source, ready } = await listeningSocket()
  listenFd = fd // kept: it is what we offer to the next process (the reactor has its duplicate)
  port = reactor.listenProxy(fd, sockets.info(fd).family, {
    upstream: args.upstreams,
    balance: 'leastConnections',
    connectTimeout: 3000,
    retries: args.upstreams.length - 1,
    proxyHeader: args.sendProxy ? 'v2' : undefined,
    proxyProtocol: args.proxyProtocol ? { versions: [1, 2] } : undefined,
    maxConnections: args.maxConnections,
    perSource: args.perSource ? { max: args.perSource } : undefined,
  })
  await ready()
  // Under systemd (Type=notify): a successor becomes the main process it watches.
  systemd.notify(`READY=1\nMAINPID=${process.pid}`)
  log('READY', { port: port.getHost().port, source, path: args.path })
}

/** SIGHUP: start a successor, offer it the socket, and drain once it took it. */
async function replace() {
  if (leaving) return
  leaving = true
  const offer = handoff.offer(args.path, [{ name: 'proxy', fd: listenFd }])
  const successor = spawn(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, L4_GENERATION: String(generation + 1) },
  })
  log('HANDOFF', { successor: successor.pid })
  const failed = new Promise((resolve) => successor.once('exit', resolve))
  const outcome = await Promise.race([offer.taken.then(() => 'taken'), failed.then(() => 'failed')])
  successor.unref()
  if (outcome !== 'taken') {
    offer.close()
    leaving = false // a successor that died before it was ready leaves us serving
    log('HANDOFF_FAILED')
    return
  }
  await drainAndExit()
}

async function drainAndExit() {
  leaving = true
  const counts = await port.drain({ deadline: args.drainDeadline, idleAfter: 1000 })
  const stats = port.stats()
  sockets.close(listenFd)
  await reactor.close()
  log('DRAINED', { ...counts, accepted: stats.connectionsAccepted, relayed: stats.sessionsRelayed })
}

process.on('SIGHUP', () => replace().catch(fail))
process.once('SIGTERM', () => {
  systemd.notify('STOPPING=1')
  drainAndExit().catch(fail)
})

function fail(err) {
  log('ERROR', { message: err.message })
  process.exitCode = 1
}

function splitHostPort(text) {
  const at = text.lastIndexOf(':')
  return [text.slice(0, at).replace(/^\[|\]$/g, ''), text.slice(at + 1)]
}

function parseArgs(argv) {
  const out = { listen: '127.0.0.1:7000', upstreams: [], path: null, maxConnections: 4000, perSource: 0, proxyProtocol: false, sendProxy: true, noThread: false, drainDeadline: 30_000 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--upstream') {
      const [host, port] = splitHostPort(argv[++i])
      out.upstreams.push({ host, port: Number(port) })
    } else if (a === '--listen') out.listen = argv[++i]
    else if (a === '--path') out.path = argv[++i]
    else if (a === '--max-connections') out.maxConnections = Number(argv[++i])
    else if (a === '--per-source') out.perSource = Number(argv[++i])
    else if (a === '--drain-deadline') out.drainDeadline = Number(argv[++i])
    else if (a === '--proxy-protocol') out.proxyProtocol = true
    else if (a === '--no-send-proxy') out.sendProxy = false
    else if (a === '--no-thread') out.noThread = true
    else throw new Error(`unknown argument ${a}`)
  }
  if (out.upstreams.length === 0) throw new Error('at least one --upstream host:port')
  out.path ??= privatePath('l4-proxy.sock')
  return out
}

/** A path in $XDG_RUNTIME_DIR, else in a 0700 directory of our own (never a directory others may
 *  write to: whoever could create the path first could offer their own socket). */
function privatePath(name) {
  const runtime = process.env.XDG_RUNTIME_DIR
  const dir = runtime && path.isAbsolute(runtime) ? runtime : path.join(os.tmpdir(), `l4-proxy-${process.getuid()}`)
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const st = fs.lstatSync(dir)
  if (!st.isDirectory() || st.uid !== process.getuid() || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a directory of ours alone: pass --path`)
  }
  return path.join(dir, name)
}

start().catch((err) => {
  fail(err)
  process.exit(1)
})
