// The servers `npm run bench` compares, and how to start and stop one.
//
// Every server gets its sockets as inherited fds from the harness, as from a supervisor: fd 3 is
// a listening TCP socket, fd 4 a UDP socket (echo servers only). A JS server prints "ready" on
// stdout once it serves; every server of ours exits when its stdin reaches EOF. This package's
// servers print a line `stats <JSON of reactor.stats()>` on stdout before they exit.
//
// Peer tools (HAProxy, nginx: `peer` entries) take the same inherited fd 3, get their config
// written to a temporary folder, count as ready once the listening socket sits in an epoll set of
// their process tree, and stop on SIGTERM. Their CPU and RSS are those of the whole process tree
// (nginx: master + worker); so are everyone's (our servers are single processes).
import { spawn } from 'node:child_process'
import { existsSync, fstatSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { findTool, haproxyLaunch, haproxyTlsLaunch, inEpollOfTree, nginxLaunch, nginxTlsLaunch, NGINX_STREAM_MODULE, tail, terminate, treeCpuSeconds, treePeakRssMiB, waitFor } from './peers.mjs'

const CLK_TCK = 100
/** How a server's `reactor.stats()` line starts. */
const STATS_PREFIX = 'stats '

/**
 * Server catalogue: `key` (used for targets and ratios; the baseline of every workload is
 * `node`, the yardsticks with no JS are `rust` and, for echo, `c`), `name` (shown in the report),
 * `role` (echo | proxy | http), and one of: `script` (a file in bench/servers/, run with Node),
 * `bin` (a binary: crates/loadgen's, or the C server compiled at bench time) with
 * `argv(upstreamPort)` giving the arguments, or `peer` (a tool found on PATH) with
 * `launch({ dir, tcpPort, upstreamPort })` writing its config and giving { cmd, args, env }.
 * `tools` must be installed, `files` present, `compiled` built by run.mjs (`compileError` set
 * when not), and `needs(root)` returns why the server cannot run yet (or null).
 */
export function serverCatalogue(root) {
  const servers = (file) => path.join(root, 'bench/servers', file)
  const bin = (name) => path.join(root, 'target/release', name)
  return [
    // Echo servers: UDP and TCP echo on fds 4 and 3.
    { key: 'thread', role: 'echo', name: 'reactor (thread)', script: servers('reactor-server.js'), argv: () => ['thread', 'echo'] },
    { key: 'hosted', role: 'echo', name: 'reactor (thread: false)', script: servers('reactor-server.js'), argv: () => ['hosted', 'echo'] },
    { key: 'node', role: 'echo', name: 'node net/dgram', script: servers('node-server.js'), argv: () => ['echo'] },
    { key: 'rust', role: 'echo', name: 'rust mio, no JS', bin: bin('echo-server'), argv: () => ['--tcp-fd', '3', '--udp-fd', '4'] },
    // The yardstick of the "CPU × C" column: bench/peers/c-echo.c, compiled by run.mjs with
    // `cc -O2` into target/bench-peers/ (skipped with the reason when there is no compiler).
    { key: 'c', role: 'echo', name: 'C epoll, no JS', bin: path.join(root, 'target/bench-peers/c-echo'), compiled: 'c-echo', argv: () => ['--tcp-fd', '3', '--udp-fd', '4'] },
    // BENCH_BASELINE=<another checkout, built>: the same echo server from that checkout, in the same
    // run, to compare a change with what it changes ("before" rows).
    ...baseline(),

    // Proxies: each client connection gets a new upstream connection to the Rust echo server.
    // SLOT (another change adds the file): bench/servers/reactor-proxy.js, the reactor's native
    // relay — `node reactor-proxy.js <thread|hosted> <upstreamPort>` (reactor `{ thread: mode !==
    // 'hosted' }`), fd 3 listening (adoptStreamPort); for every client,
    // `reactor.connectTCP('127.0.0.1', upstreamPort, …)` and `reactor.relay(client.transport,
    // upstream.transport)`; print "ready" once serving; exit on stdin EOF. Until the file exists
    // these rows are skipped with a note.
    { key: 'relay-thread', role: 'proxy', name: 'reactor relay (thread)', script: servers('reactor-proxy.js'), argv: (up) => ['thread', up] },
    { key: 'relay-hosted', role: 'proxy', name: 'reactor relay (thread: false)', script: servers('reactor-proxy.js'), argv: (up) => ['hosted', up] },
    // Today's way with this package: bytes through JS, a blocking connect per client.
    { key: 'jsrelay-thread', role: 'proxy', name: 'reactor JS relay (thread)', script: servers('reactor-server.js'), argv: (up) => ['thread', 'proxy', up] },
    { key: 'jsrelay-hosted', role: 'proxy', name: 'reactor JS relay (thread: false)', script: servers('reactor-server.js'), argv: (up) => ['hosted', 'proxy', up] },
    { key: 'node', role: 'proxy', name: 'node net + pipe()', script: servers('node-proxy.js'), argv: (up) => [up] },
    { key: 'rust', role: 'proxy', name: 'rust splice(2), no JS', bin: bin('splice-proxy'), argv: (up) => ['--tcp-fd', '3', '--upstream', `127.0.0.1:${up}`] },
    // Peer proxies users would pick instead (Debian: haproxy, nginx + libnginx-mod-stream).
    { key: 'haproxy', role: 'proxy', name: 'HAProxy 2.6 (1 thread, splice-auto)', peer: 'haproxy', tools: ['haproxy'], launch: haproxyLaunch },
    { key: 'nginx', role: 'proxy', name: 'nginx 1.22 stream (master + 1 worker)', peer: 'nginx', tools: ['nginx'], files: [[NGINX_STREAM_MODULE, 'libnginx-mod-stream not installed']], launch: nginxLaunch },
    // This package's native proxy port (reactor.listenProxy): accept, connect and relay in the core.
    // bench/servers/reactor-listen-proxy.js — `node reactor-listen-proxy.js <thread|hosted>
    // <upstreamPort>`, fd 3 listening: the whole proxy (accept, connect upstream, relay) in the
    // core, set up by one `reactor.listenProxy(...)` call; prints "ready" once serving, and
    // `stats <reactor.stats()>` then exits on stdin EOF. Until `Reactor.prototype.listenProxy` is a
    // function these rows say "skipped: not built yet". When it lands: fix the call in that file
    // to the real signature, and add targets for 'listen-thread'/'listen-hosted' in report.mjs.
    // The entries are also on every real-client row (clients.mjs, CLIENT_PATHS).
    { key: 'listen-thread', role: 'proxy', name: 'reactor listenProxy (thread)', script: servers('reactor-listen-proxy.js'), argv: (up) => ['thread', up], needs: listenProxyBuilt },
    { key: 'listen-hosted', role: 'proxy', name: 'reactor listenProxy (thread: false)', script: servers('reactor-listen-proxy.js'), argv: (up) => ['hosted', up], needs: listenProxyBuilt },
    // ==== end of SLOT ====

    // TLS-terminating proxies (the `tls-proxy` rows): each client's TLS is terminated and the
    // plaintext relayed to the Rust echo server. This package's listenProxy with `tls` (the
    // handshake and the records in the core, userspace rustls), Node's tls.createServer +
    // net.connect + pipe(), HAProxy (`bind ... ssl crt`, nbthread 1) and nginx's stream `ssl`
    // (one worker). Certificates: $BENCH_TLS_DIR (run.mjs makes them with openssl).
    { key: 'tls-listen-thread', role: 'tls-proxy', name: 'reactor listenProxy tls (thread)', script: servers('reactor-tls-proxy.js'), argv: (up) => ['thread', up], needs: tlsCerts },
    { key: 'tls-listen-hosted', role: 'tls-proxy', name: 'reactor listenProxy tls (thread: false)', script: servers('reactor-tls-proxy.js'), argv: (up) => ['hosted', up], needs: tlsCerts },
    { key: 'node', role: 'tls-proxy', name: 'node tls + net + pipe()', script: servers('node-tls-proxy.js'), argv: (up) => [up], needs: tlsCerts },
    { key: 'haproxy', role: 'tls-proxy', name: 'HAProxy 2.6 ssl (1 thread)', peer: 'haproxy', tools: ['haproxy'], launch: haproxyTlsLaunch, needs: tlsCerts },
    { key: 'nginx', role: 'tls-proxy', name: 'nginx 1.22 stream ssl (master + 1 worker)', peer: 'nginx', tools: ['nginx'], files: [[NGINX_STREAM_MODULE, 'libnginx-mod-stream not installed']], launch: nginxTlsLaunch, needs: tlsCerts },

    // HTTP/1.1 keep-alive servers answering every request with its URL as the body.
    // SLOT (another change adds the file): bench/servers/reactor-http.js, Node's `http` server over
    // the reactor's `SocketStream` — `node reactor-http.js <thread|hosted>`, fd 3 listening
    // (adoptStreamPort with `ServerFactory.forStreams((s) => server.emit('connection', s))`), where
    // `server = http.createServer((req, res) => res.end(req.url))` as in node-http.js; print "ready"
    // once serving; exit on stdin EOF. Until the file exists these rows are skipped with a note.
    { key: 'http-thread', role: 'http', name: 'reactor SocketStream + http (thread)', script: servers('reactor-http.js'), argv: () => ['thread'] },
    { key: 'http-hosted', role: 'http', name: 'reactor SocketStream + http (thread: false)', script: servers('reactor-http.js'), argv: () => ['hosted'] },
    { key: 'node', role: 'http', name: 'node http on net', script: servers('node-http.js'), argv: () => [] },
  ]
}

function baseline() {
  const dir = process.env.BENCH_BASELINE
  if (!dir) return []
  const script = path.join(path.resolve(dir), 'bench/servers/reactor-server.js')
  return [
    { key: 'before-thread', role: 'echo', name: 'reactor before (thread)', script, argv: () => ['thread', 'echo'] },
    { key: 'before-hosted', role: 'echo', name: 'reactor before (thread: false)', script, argv: () => ['hosted', 'echo'] },
  ]
}

/** The TLS rows need the certificates run.mjs makes (BENCH_TLS_DIR set, or why it is not). */
function tlsCerts() {
  return process.env.BENCH_TLS_DIR ? null : process.env.BENCH_TLS_MISSING ?? 'no TLS certificates made'
}

/** The listenProxy slot: null once this package's Reactor has `listenProxy`, else why not. */
function listenProxyBuilt(root) {
  try {
    const { Reactor } = createRequire(path.join(root, 'package.json'))(root)
    return typeof Reactor?.prototype?.listenProxy === 'function' ? null : 'not built yet (reactor.listenProxy is not a function)'
  } catch (err) {
    return `not built yet (${err.message})`
  }
}

/** Why `server` cannot run here (a tool not installed, a file missing, not built), or null. */
export function missing(server, root) {
  for (const tool of server.tools ?? []) if (!findTool(tool)) return `${tool} not installed`
  for (const [file, why] of server.files ?? []) if (!existsSync(file)) return why
  if (server.compileError) return server.compileError
  if (server.needs) {
    const why = server.needs(root)
    if (why) return why
  }
  if (server.peer) return null
  const file = server.script ?? server.bin
  return existsSync(file) ? null : `${path.relative(root, file)} not present`
}

/** User + system CPU seconds of `pid` and its descendants (all threads). */
export const cpuSeconds = treeCpuSeconds

/**
 * CPU seconds the whole machine has spent busy (all cores, including time the hypervisor gave
 * to other guests: steal), from /proc/stat.
 */
export function machineBusySeconds() {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, , , irq, softirq, steal] = cpu
    return (user + nice + system + irq + softirq + steal) / CLK_TCK
  } catch {
    return NaN
  }
}

/** Peak RSS of `pid` plus that of its descendants, MiB. */
export const peakRssMiB = treePeakRssMiB

/**
 * Starts `server` on fresh inherited sockets (made with this package's `sockets` helpers);
 * resolves once it serves, with its ports. `dir`: a temporary folder for peers' configs.
 */
export function startServer(sockets, server, upstreamPort, { dir } = {}) {
  const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 1024 })
  const udp = server.role === 'echo' ? sockets.bindUdp({ host: '127.0.0.1', port: 0 }) : null
  const tcpPort = sockets.info(tcp).local.port
  const udpPort = udp === null ? null : sockets.info(udp).local.port
  const ino = fstatSync(tcp).ino
  let cmd, args, env
  if (server.peer) {
    ;({ cmd, args, env } = server.launch({ dir, tcpPort, upstreamPort }))
  } else {
    const argv = server.argv(String(upstreamPort ?? ''))
    ;[cmd, args] = server.script ? [process.execPath, [server.script, ...argv]] : [server.bin, argv]
  }
  const fds = udp === null ? [tcp] : [tcp, udp]
  // A peer's stderr is kept for the error message if it fails; ours goes to the terminal.
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', server.peer ? 'pipe' : 'inherit', ...fds], env })
  for (const fd of fds) sockets.close(fd)
  const peerSaid = server.peer ? tail(child.stderr) : () => ''
  child.on('error', () => {}) // reported through 'exit' / the start timeout
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => (out = (out + d).slice(-1_000_000)))
  const parse = () => {
    const line = out.split('\n').findLast((l) => l.startsWith(STATS_PREFIX))
    try {
      return line === undefined ? null : JSON.parse(line.slice(STATS_PREFIX.length))
    } catch {
      return null
    }
  }
  /** After the server exited: its `reactor.stats()` printed at exit, or null (not this package,
   *  or no line). Waits for its stdout to close ('exit' may come before the last output). */
  const stats = () =>
    new Promise((resolve) => {
      if (child.stdout.closed) return resolve(parse())
      const timer = setTimeout(() => resolve(parse()), 2_000)
      child.stdout.once('close', () => {
        clearTimeout(timer)
        resolve(parse())
      })
    })
  const started = { child, tcpPort, udpPort, stats, peer: Boolean(server.peer) }
  if (server.peer) {
    // Serving once the inherited listening socket is in an epoll set of the tree (HAProxy's
    // loop, nginx's worker): connections made before that would wait in the backlog.
    const fail = (err) => {
      const said = peerSaid()
      return new Error(`${err.message}${said ? `: ${said.split('\n').slice(-3).join(' / ')}` : ''}`)
    }
    return waitFor(() => inEpollOfTree(child.pid, ino), { child, what: server.peer }).then(
      () => started,
      async (err) => {
        await terminate(child)
        throw fail(err)
      },
    )
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${server.name} did not start`))
    }, 10_000)
    const ready = () => {
      clearTimeout(timer)
      resolve(started)
    }
    // A binary serves from the moment it runs: its socket already listens.
    if (server.bin) child.once('spawn', ready)
    else child.stdout.once('data', ready)
    child.once('exit', (code) => reject(new Error(`${server.name} exited early (${code})`)))
  })
}

/** Stops what startServer started: stdin EOF for ours, SIGTERM for a peer tool. */
export function stopServer(started) {
  const child = started.child ?? started
  if (started.peer) return terminate(child)
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.stdin.end()
  })
}
