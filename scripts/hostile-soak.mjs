// A hostile descriptor-passing peer under load (the "hostile" phase of `npm run soak`, or alone:
// `node scripts/hostile-soak.mjs [--seconds 10] [--mode thread|no-thread]`).
//
// A server process adopts a UNIX echo port whose listening socket has SO_PASSCRED (systemd's
// PassCredentials=yes) and, where the kernel has it, SO_PASSPIDFD: every read then brings
// credentials and a pidfd besides the passed descriptors. Half its protocols take received
// descriptors (fileDescriptorReceived, which closes them), half leave them to the reactor (closed
// at once). A python3 peer with 4 threads connects again and again and, at random: sends 200–253
// descriptors with one write, sends its own SCM_CREDENTIALS with descriptors, sends one
// descriptor with each of 50 one-byte writes, sends descriptors and closes before the echo
// (descriptors in flight when the connection goes), or sends plain data; every echo is checked.
//
// Judged: no descriptor leaked by the server (/proc/self/fd, idle before and after), no crash,
// no exception, no connection lost for any reason but a clean close or the peer's reset (an
// EMSGSIZE here is a passed descriptor the receive buffer had no room for), every echo intact.
import { fork, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** SO_PASSPIDFD (include/uapi/asm-generic/socket.h). */
const SO_PASSPIDFD = 76

// The hostile peer. argv: path, seconds. Prints one JSON line of counts.
const PEER = String.raw`
import array, json, os, random, socket, struct, sys, threading, time
path, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
base = [os.open('/dev/null', os.O_RDONLY) for _ in range(3)]
pair = socket.socketpair()
base += [pair[0].fileno(), pair[1].fileno()]
lock = threading.Lock()
stats = {k: 0 for k in ['connections', 'fds_sent', 'bytes_sent', 'bytes_echoed', 'mismatches', 'errors', 'closed_early', 'by_kind_many', 'by_kind_creds', 'by_kind_tiny', 'by_kind_close', 'by_kind_plain']}
errors = []

def rights(n):
    return (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [random.choice(base) for _ in range(n)]))

def one(kind):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(path)
    sent = b''
    fds = 0
    try:
        if kind == 'many':
            n = random.randint(200, 253)
            data = os.urandom(random.randint(1, 8192))
            s.sendmsg([data], [rights(n)])
            sent, fds = data, n
        elif kind == 'creds':
            n = random.randint(1, 253)
            data = os.urandom(random.randint(1, 4096))
            creds = struct.pack('iII', os.getpid(), os.getuid(), os.getgid())
            s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds), rights(n)])
            sent, fds = data, n
        elif kind == 'tiny':
            for _ in range(50):
                s.sendmsg([b'x'], [rights(1)])
            sent, fds = b'x' * 50, 50
        elif kind == 'close':
            n = random.randint(1, 253)
            s.sendmsg([os.urandom(random.randint(1, 100))], [rights(n)])
            with lock:
                stats['fds_sent'] += n
                stats['closed_early'] += 1
            return
        else:
            sent = os.urandom(random.randint(1, 65536))
            s.sendall(sent)
        got = b''
        while len(got) < len(sent):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        with lock:
            stats['fds_sent'] += fds
            stats['bytes_sent'] += len(sent)
            stats['bytes_echoed'] += len(got)
            if got != sent:
                stats['mismatches'] += 1
                errors.append('%s: echoed %d of %d bytes' % (kind, len(got), len(sent)))
    finally:
        s.close()

def loop():
    while time.time() < end:
        kind = random.choice(['many', 'creds', 'tiny', 'close', 'plain'])
        try:
            one(kind)
            with lock:
                stats['connections'] += 1
                stats['by_kind_' + kind] += 1
        except Exception as e:
            with lock:
                stats['errors'] += 1
                if len(errors) < 10:
                    errors.append('%s: %r' % (kind, e))

threads = [threading.Thread(target=loop) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
stats['error_list'] = errors
print(json.dumps(stats), flush=True)
`

// =================================================================================================
// Server (a child process: its descriptor table is what is judged)

async function server(thread) {
  const { Reactor, AddressFamily, Protocol, ConnectionDone, ConnectionLost, sockets } = await import('reactor-socket')
  const stats = { accepted: 0, lostDone: 0, lostReset: 0, lostOther: 0, fdsReceived: 0, bytes: 0, onError: 0 }
  const errors = []
  const r = new Reactor({
    thread,
    onError: (e) => {
      stats.onError++
      if (errors.length < 10) errors.push(String(e?.stack ?? e))
    },
  })
  class Echo extends Protocol {
    dataReceived(d) {
      stats.bytes += d.length
      this.transport.write(d)
    }
    connectionLost(reason) {
      if (reason instanceof ConnectionDone) stats.lostDone++
      else if (reason instanceof ConnectionLost && ['ECONNRESET', 'EPIPE'].includes(reason.code)) stats.lostReset++
      else {
        stats.lostOther++
        if (errors.length < 10) errors.push(`connectionLost: ${reason?.code ?? ''} ${reason}`)
      }
    }
  }
  class TakingEcho extends Echo {
    fileDescriptorReceived(fd) {
      stats.fdsReceived++
      sockets.close(fd)
    }
  }
  const fdCount = () => fs.readdirSync('/proc/self/fd').length - 1
  const socketPath = path.join(os.tmpdir(), `reactor-socket-hostile-soak-${process.pid}.sock`)
  fs.rmSync(socketPath, { force: true })
  const fd = sockets.listenUnix(socketPath)
  // SO_PASSCRED always; SO_PASSPIDFD where the kernel has it (Linux >= 6.5). The package has no
  // API for them: python3 sets them on an inherited copy (the options belong to the socket).
  const script = [
    'import socket',
    's = socket.socket(fileno=3)',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)',
    'try:',
    `    s.setsockopt(socket.SOL_SOCKET, ${SO_PASSPIDFD}, 1)`,
    '    print("PIDFD")',
    'except OSError:',
    '    print("NO")',
    's.detach()',
  ].join('\n')
  const options = await run('python3', ['-c', script], 10000, ['ignore', 'pipe', 'pipe', fd])
  if (options.code !== 0) throw new Error(`setting SO_PASSCRED on the listener: ${options.stderr}`)
  const passPidfd = options.stdout.includes('PIDFD')
  const port = r.adoptStreamPort(fd, AddressFamily.UNIX, {
    buildProtocol: () => (stats.accepted++ % 2 === 0 ? new Echo() : new TakingEcho()),
  })
  sockets.close(fd)
  await sleep(200)
  const idleFds = fdCount()
  process.on('message', async (m) => {
    if (m.type === 'sample') process.send({ type: 'sample', fds: fdCount(), stats, errors })
    else if (m.type === 'stop') {
      await port.stopListening()
      await r.close()
      fs.rmSync(socketPath, { force: true })
      process.send({ type: 'stopped', fds: fdCount(), stats, errors }, () => process.exit(0))
    }
  })
  process.send({ type: 'ready', idleFds, path: socketPath, passPidfd })
}

// =================================================================================================
// Orchestrator

function next(child, type, ms = 30000) {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`timed out waiting for ${type}`))
    }, ms)
    const onMessage = (m) => {
      if (m.type !== type) return
      done()
      resolve(m)
    }
    const onExit = (code, signal) => {
      done()
      reject(new Error(`the server exited (${code ?? signal}) before ${type}`))
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

function run(cmd, args, ms, stdio = ['ignore', 'pipe', 'pipe']) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio })
    let stdout = ''
    let stderr = ''
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => c.kill('SIGKILL'), ms)
    c.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

function hasPython() {
  return (process.env.PATH ?? '').split(':').some((dir) => fs.existsSync(path.join(dir, 'python3')))
}

/** One bounded run in one reactor mode. Resolves with the figures and the problems found. */
export async function hostileUnderLoad({ thread = true, seconds = 10 } = {}) {
  const mode = thread ? 'thread' : 'no-thread'
  if (!hasPython()) return { mode, skipped: 'python3 is missing', problems: [] }
  const srv = fork(SELF, ['--role', 'server', '--mode', mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise((resolve) => srv.once('exit', (code, signal) => resolve({ code, signal })))
  const problems = []
  try {
    const ready = await next(srv, 'ready')
    const { path: socketPath, passPidfd } = ready
    const peer = await run('python3', ['-c', PEER, socketPath, String(seconds)], (seconds + 60) * 1000)
    let client = null
    try {
      client = JSON.parse(peer.stdout.trim().split('\n').pop())
    } catch {
      problems.push(`the hostile peer failed: ${peer.code ?? peer.signal} ${peer.stderr.slice(0, 500)}`)
    }
    // Idle again: every connection closed, the descriptors it brought closed too.
    let sample
    for (let i = 0; i < 50; i++) {
      srv.send({ type: 'sample' })
      sample = await next(srv, 'sample')
      if (sample.fds <= ready.idleFds && sample.stats.accepted === sample.stats.lostDone + sample.stats.lostReset + sample.stats.lostOther) break
      await sleep(100)
    }
    srv.send({ type: 'stop' })
    const stopped = await next(srv, 'stopped')
    const exit = await exited
    const s = stopped.stats
    if (sample.fds > ready.idleFds) problems.push(`${sample.fds - ready.idleFds} fd(s) leaked (idle ${ready.idleFds} before, ${sample.fds} after)`)
    if (s.onError) problems.push(`${s.onError} exceptions: ${stopped.errors.join('; ')}`)
    if (s.lostOther) problems.push(`${s.lostOther} connections lost for another reason than a close or a reset: ${stopped.errors.join('; ')}`)
    if (exit.code !== 0 || exit.signal) problems.push(`the server exited with ${exit.code ?? exit.signal}`)
    if (client) {
      if (client.mismatches) problems.push(`${client.mismatches} echoes differ: ${client.error_list.join('; ')}`)
      if (client.errors) problems.push(`${client.errors} peer errors: ${client.error_list.join('; ')}`)
      if (client.connections === 0) problems.push('the hostile peer made no connection')
    }
    return { mode, seconds, passPidfd, idleFds: ready.idleFds, endFds: sample.fds, server: s, client, exit, problems }
  } catch (err) {
    srv.kill('SIGKILL')
    problems.push(String(err?.message ?? err))
    return { mode, seconds, problems }
  }
}

export function describe(h) {
  if (h.skipped) return `hostile peer (${h.mode}): skipped, ${h.skipped}`
  if (!h.client) return `hostile peer (${h.mode})`
  const c = h.client
  return (
    `hostile peer (${h.mode}, ${h.seconds} s, SO_PASSCRED${h.passPidfd ? ' + SO_PASSPIDFD' : ''}): ${c.connections} connections ` +
    `(${c.by_kind_many} × 200–253 fds, ${c.by_kind_creds} with SCM_CREDENTIALS, ${c.by_kind_tiny} × 50 one-fd writes, ` +
    `${c.by_kind_close} closed with fds in flight, ${c.by_kind_plain} plain), ${c.fds_sent} fds sent, ` +
    `${h.server.fdsReceived} taken by protocols, ${c.bytes_echoed} bytes echoed; server fds ${h.idleFds} → ${h.endFds}`
  )
}

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  if (arg('role', 'main') === 'server') await server(arg('mode', 'thread') !== 'no-thread')
  else {
    const seconds = Number(arg('seconds', 10))
    const which = arg('mode', 'both')
    let failed = false
    for (const mode of which === 'both' ? ['thread', 'no-thread'] : [which]) {
      const h = await hostileUnderLoad({ thread: mode !== 'no-thread', seconds })
      console.log(`${describe(h)}: ${h.problems.length ? 'FAIL: ' + h.problems.join('; ') : 'PASS'}`)
      failed ||= h.problems.length > 0
    }
    process.exit(failed ? 1 : 0)
  }
}
