// The peer tools `npm run bench` measures this package against, beside its own servers: a C epoll
// echo server compiled at bench time, HAProxy and nginx as proxies, and the upstreams of the
// real-client rows (redis-server, an iperf3 server). Also the /proc helpers that servers made of
// several processes need (nginx: master + worker): the process tree's CPU and peak RSS, and
// readiness as "the listening socket is in an epoll set of the tree".
//
// A tool that is not installed makes its rows say "skipped: <tool> not installed"; nothing here
// fails the run for a missing tool.
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'

const CLK_TCK = 100
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
/** HAProxy and nginx live in /usr/sbin, which a non-root PATH may lack. */
const EXTRA_PATH = ['/usr/sbin', '/sbin', '/usr/local/sbin']

/** BENCH_WITHOUT=haproxy,cc,...: tools to treat as not installed (to check the skip paths). */
const WITHOUT = new Set((process.env.BENCH_WITHOUT ?? '').split(',').filter(Boolean))

/** Full path of executable `name` on PATH (or in the sbin folders), or null. */
export function findTool(name) {
  if (WITHOUT.has(name)) return null
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...EXTRA_PATH]
  for (const dir of dirs) {
    const file = path.join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {}
  }
  return null
}

// ---- the C epoll echo server -------------------------------------------------------------------

/**
 * Compiles bench/peers/c-echo.c with `cc -O2` into target/bench-peers/c-echo (every run, so the
 * binary always matches the source). Returns null, or why the C server is skipped.
 */
export function compileCEcho(root) {
  const cc = WITHOUT.has('cc') ? null : process.env.CC ? findTool(process.env.CC) ?? process.env.CC : findTool('cc') ?? findTool('gcc') ?? findTool('clang')
  if (!cc || !existsSync(cc)) return 'no C compiler (cc) found'
  const out = path.join(root, 'target/bench-peers')
  mkdirSync(out, { recursive: true })
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', path.join(out, 'c-echo'), path.join(root, 'bench/peers/c-echo.c')], { encoding: 'utf8' })
  if (r.error) return `cc failed: ${r.error.message}`
  if (r.status !== 0) return `cc failed: ${(r.stderr || '').trim().split('\n')[0]}`
  return null
}

// ---- HAProxy and nginx -------------------------------------------------------------------------

/**
 * HAProxy 2.6 as a TCP proxy on the inherited listening socket (fd 3): one thread, splice when it
 * pays, maxconn 4000 (it raises its fd limit to about 2.5× that and refuses to start past
 * `ulimit -n`). Config written to `dir`. Stops on SIGTERM.
 */
export function haproxyLaunch({ dir, upstreamPort }) {
  const cfg = path.join(dir, 'haproxy.cfg')
  writeFileSync(
    cfg,
    `global
    nbthread 1
    maxconn 4000

defaults
    mode tcp
    maxconn 4000
    option splice-auto
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend bench
    bind fd@3
    default_backend upstream

backend upstream
    server up 127.0.0.1:${upstreamPort}
`,
  )
  return { cmd: findTool('haproxy'), args: ['-f', cfg, '-db'], env: process.env }
}

/**
 * nginx 1.22's stream module as a TCP proxy, master + one worker (with `master_process off` and an
 * inherited socket it crashes). It takes the inherited socket through `NGINX="3;"` and matches it
 * to the `listen` directive by address, so the config names the socket's own address and port.
 * Config, pid file and prefix in `dir`; errors to stderr. Stops on SIGTERM (fast shutdown).
 */
export function nginxLaunch({ dir, tcpPort, upstreamPort }) {
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(
    conf,
    `load_module ${NGINX_STREAM_MODULE};
master_process on;
worker_processes 1;
daemon off;
pid ${path.join(dir, 'nginx.pid')};
error_log stderr warn;

events {
    worker_connections 8192;
}

stream {
    server {
        listen 127.0.0.1:${tcpPort};
        proxy_pass 127.0.0.1:${upstreamPort};
    }
}
`,
  )
  return { cmd: findTool('nginx'), args: ['-c', conf, '-p', dir + '/', '-e', 'stderr'], env: { ...process.env, NGINX: '3;' } }
}

// ---- TLS-terminating HAProxy and nginx (the `tls-proxy` rows) ----------------------------------

/**
 * HAProxy terminating TLS on the inherited socket (`bind fd@3 ssl crt`), one thread, plaintext to
 * the upstream; its default TLS settings (TLS 1.2 and 1.3, session cache and tickets on). The
 * certificate and key are `$BENCH_TLS_DIR/combined.pem` (as HAProxy reads them: one file).
 */
export function haproxyTlsLaunch({ dir, upstreamPort }) {
  const cfg = path.join(dir, 'haproxy-tls.cfg')
  writeFileSync(
    cfg,
    `global
    nbthread 1
    maxconn 4000

defaults
    mode tcp
    maxconn 4000
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend bench
    bind fd@3 ssl crt ${path.join(process.env.BENCH_TLS_DIR ?? dir, 'combined.pem')}
    default_backend upstream

backend upstream
    server up 127.0.0.1:${upstreamPort}
`,
  )
  return { cmd: findTool('haproxy'), args: ['-f', cfg, '-db'], env: process.env }
}

/** nginx's stream module terminating TLS (`listen ... ssl`), master + one worker, tickets on
 *  (its default) and a shared session cache, plaintext to the upstream. */
export function nginxTlsLaunch({ dir, tcpPort, upstreamPort }) {
  const tlsDir = process.env.BENCH_TLS_DIR ?? dir
  const conf = path.join(dir, 'nginx-tls.conf')
  writeFileSync(
    conf,
    `load_module ${NGINX_STREAM_MODULE};
master_process on;
worker_processes 1;
daemon off;
pid ${path.join(dir, 'nginx-tls.pid')};
error_log stderr warn;

events {
    worker_connections 8192;
}

stream {
    server {
        listen 127.0.0.1:${tcpPort} ssl;
        ssl_certificate ${path.join(tlsDir, 'cert.pem')};
        ssl_certificate_key ${path.join(tlsDir, 'key.pem')};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:bench:10m;
        proxy_pass 127.0.0.1:${upstreamPort};
    }
}
`,
  )
  return { cmd: findTool('nginx'), args: ['-c', conf, '-p', dir + '/', '-e', 'stderr'], env: { ...process.env, NGINX: '3;' } }
}

/**
 * The TLS rows' certificates, made with openssl in `dir` (a test CA and a `localhost` leaf,
 * ECDSA P-256, as the proxies would serve in production): cert.pem, key.pem, combined.pem
 * (HAProxy's), ca.pem (the load generator's). Returns null, or why the TLS rows are skipped.
 */
export function makeBenchCerts(dir) {
  if (!findTool('openssl')) return 'openssl not installed (no certificate for the TLS rows)'
  mkdirSync(dir, { recursive: true })
  const run = (args) => spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
  const steps = [
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca.key'],
    ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=bench CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', 'ca.pem'],
    ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'key.pem'],
    ['req', '-new', '-key', 'key.pem', '-subj', '/CN=localhost', '-out', 'leaf.csr'],
  ]
  writeFileSync(path.join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n')
  steps.push(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '2', '-extfile', 'leaf.ext', '-out', 'cert.pem'])
  for (const args of steps) {
    const r = run(args)
    if (r.status !== 0) return `openssl ${args[0]} failed: ${(r.stderr || '').trim().split('\n')[0]}`
  }
  writeFileSync(path.join(dir, 'combined.pem'), readFileSync(path.join(dir, 'cert.pem'), 'utf8') + readFileSync(path.join(dir, 'key.pem'), 'utf8'))
  return null
}

// ---- /proc: process trees, CPU, RSS, readiness -------------------------------------------------

/** `pid` and all its descendants (through /proc/<pid>/task/<tid>/children). */
export function processTree(pid) {
  const out = [pid]
  let tasks = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const t of tasks) {
    let kids = ''
    try {
      kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8')
    } catch {
      continue
    }
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) out.push(...processTree(Number(k)))
  }
  return out
}

function ownCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK // utime + stime, all threads
  } catch {
    return 0
  }
}

/** User + system CPU seconds of `pid` and its live descendants (nginx's master and worker). */
export function treeCpuSeconds(pid) {
  return processTree(pid).reduce((sum, p) => sum + ownCpuSeconds(p), 0)
}

/** Sum of the peak RSS (VmHWM) of `pid` and its descendants, MiB. */
export function treePeakRssMiB(pid) {
  let sum = 0
  let any = false
  for (const p of processTree(pid)) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) {
        sum += Number(m[1]) / 1024
        any = true
      }
    } catch {}
  }
  return any ? sum : NaN
}

/**
 * Whether the socket with inode `ino` is registered in an epoll set of `pid` or a descendant: the
 * moment a peer that adopted an inherited listening socket serves it (nginx's worker, HAProxy's
 * loop). Read from /proc/<pid>/fdinfo (epoll entries list `tfd: … ino:<hex>`).
 */
export function inEpollOfTree(pid, ino) {
  const needle = new RegExp(`\\bino:${ino.toString(16)}\\b`)
  for (const p of processTree(pid)) {
    let fds = []
    try {
      fds = readdirSync(`/proc/${p}/fdinfo`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let text = ''
      try {
        text = readFileSync(`/proc/${p}/fdinfo/${fd}`, 'utf8')
      } catch {
        continue
      }
      if (text.includes('tfd:') && needle.test(text)) return true
    }
  }
  return false
}

/** Whether something listens on 127.0.0.1:`port` (TCP, /proc/net/tcp state 0A). */
export function listening(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  try {
    return readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .some((l) => {
        const f = l.trim().split(/\s+/)
        return f[1] === `0100007F:${hex}` && f[3] === '0A'
      })
  } catch {
    return false
  }
}

/** Polls `test` every 5 ms until it holds; rejects after `ms` or when `child` exits. */
export function waitFor(test, { child, ms = 10_000, what }) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const tick = () => {
      if (child && (child.exitCode !== null || child.signalCode !== null)) return reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode})`))
      if (test()) return resolve()
      if (Date.now() - t0 > ms) return reject(new Error(`${what} not ready after ${ms} ms`))
      setTimeout(tick, 5)
    }
    tick()
  })
}

/** A free loopback TCP port, for a peer that binds its own socket (redis-server, iperf3 -s). */
export function pickPort(sockets) {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const port = sockets.info(fd).local.port
  sockets.close(fd)
  return port
}

/** Sends SIGTERM to `child`, SIGKILLs it and what is left of its tree after 5 s. */
export function terminate(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const tree = processTree(child.pid)
    const timer = setTimeout(() => {
      for (const p of tree) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {}
      }
    }, 5_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Keeps the last `max` characters a child writes on `stream`, for error messages. */
export function tail(stream, max = 2_000) {
  let text = ''
  stream.setEncoding('utf8')
  stream.on('data', (d) => (text = (text + d).slice(-max)))
  return () => text.trim()
}

// ---- upstreams of the real-client rows ---------------------------------------------------------

/**
 * redis-server on a port picked here (it binds its own socket), nothing persisted, one key set for
 * the GET rows (`redis-benchmark -t get` asks for `key:__rand_int__` when given no `-r`).
 * Resolves to { child, port, stop() }.
 */
export async function startRedis(sockets, dir) {
  const exe = findTool('redis-server')
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    // The port is free when picked; another process may take it before redis binds: retry.
    const port = pickPort(sockets)
    const child = spawn(exe, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--daemonize', 'no', '--dir', dir, '--logfile', ''], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out = tail(child.stdout)
    try {
      await waitFor(() => listening(port), { child, what: 'redis-server' })
      await redisSet(port, 'key:__rand_int__', 'xxx')
      return { child, port, stop: () => terminate(child) }
    } catch (err) {
      lastError = new Error(`${err.message}: ${out().split('\n').slice(-3).join(' / ')}`)
      await terminate(child)
    }
  }
  throw lastError
}

function redisSet(port, key, value) {
  const cmd = `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(cmd))
    s.setEncoding('utf8')
    s.once('data', (d) => {
      s.destroy()
      d.startsWith('+OK') ? resolve() : reject(new Error(`redis SET answered ${JSON.stringify(d)}`))
    })
    s.once('error', reject)
  })
}

/**
 * An iperf3 server (`iperf3 -s`) on a port picked here; it serves one test at a time, the control
 * connection and the data connections on the same port. Resolves to { child, port, stop() }.
 */
export async function startIperf3(sockets) {
  const exe = findTool('iperf3')
  let lastError
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = pickPort(sockets)
    const child = spawn(exe, ['-s', '-p', String(port), '-B', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const out = tail(child.stdout)
    const err = tail(child.stderr)
    try {
      await waitFor(() => listening(port), { child, what: 'iperf3 -s' })
      return { child, port, stop: () => terminate(child) }
    } catch (e) {
      lastError = new Error(`${e.message}: ${(err() || out()).split('\n').slice(-3).join(' / ')}`)
      await terminate(child)
    }
  }
  throw lastError
}
