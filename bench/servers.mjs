// The servers `npm run bench` compares, and how to start and stop one.
//
// Every server gets its sockets as inherited fds from the harness, as from a supervisor: fd 3 is
// a listening TCP socket, fd 4 a UDP socket (echo servers only). A JS server prints "ready" on
// stdout once it serves; every server exits when its stdin reaches EOF. This package's servers
// print a line `stats <JSON of reactor.stats()>` on stdout before they exit.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import * as path from 'node:path'

const CLK_TCK = 100
/** How a server's `reactor.stats()` line starts. */
const STATS_PREFIX = 'stats '

/**
 * Server catalogue: `key` (used for targets and ratios; the baseline of every workload is
 * `node`), `name` (shown in the report), `role` (echo | proxy | http), and either `script` (a
 * file in bench/servers/, run with Node) or `bin` (a binary of crates/loadgen). `argv(upstreamPort)`
 * gives the arguments.
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

/** Why `server` cannot run here (its file is missing), or null. */
export function missing(server, root) {
  const file = server.script ?? server.bin
  return existsSync(file) ? null : `${path.relative(root, file)} not present`
}

export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK // utime + stime, all threads
  } catch {
    return NaN
  }
}

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

export function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

/**
 * Starts `server` on fresh inherited sockets (made with this package's `sockets` helpers);
 * resolves once it serves, with its ports.
 */
export function startServer(sockets, server, upstreamPort) {
  const tcp = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 1024 })
  const udp = server.role === 'echo' ? sockets.bindUdp({ host: '127.0.0.1', port: 0 }) : null
  const tcpPort = sockets.info(tcp).local.port
  const udpPort = udp === null ? null : sockets.info(udp).local.port
  const argv = server.argv(String(upstreamPort ?? ''))
  const [cmd, args] = server.script ? [process.execPath, [server.script, ...argv]] : [server.bin, argv]
  const fds = udp === null ? [tcp] : [tcp, udp]
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit', ...fds] })
  for (const fd of fds) sockets.close(fd)
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => (out += d))
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
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${server.name} did not start`)), 10_000)
    const ready = () => {
      clearTimeout(timer)
      resolve({ child, tcpPort, udpPort, stats })
    }
    // A binary serves from the moment it runs: its socket already listens.
    if (server.bin) child.once('spawn', ready)
    else child.stdout.once('data', ready)
    child.once('exit', (code) => reject(new Error(`${server.name} exited early (${code})`)))
  })
}

export function stopServer(child) {
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
