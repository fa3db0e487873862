#!/usr/bin/env node
// Soak test (`npm run soak`): bounded by time, in both reactor modes (half the time each).
//
//   node scripts/soak.mjs [--seconds N] [--mode thread|no-thread|both] [--clients C] [--handoffs H]
//                         [--proxy-seconds P] [--hostile-seconds S] [--json file]
//
// A server process adopts a TCP echo port, a UDP echo port and a "slow reader" port (a protocol
// whose dataReceived busy-waits and pauses/resumes its transport, and answers the SHA-256 of all it
// read), and every second adopts a socketpair connection and echoes through it. A separate client
// process churns: C concurrent connect / echo (random sizes, every byte checked) / close loops with
// 10% of the clients resetting at a random point; UDP datagrams echoed and checked; 8 MiB streams
// into the slow reader, checked by hash. The server's fd count and RSS (after a GC) are sampled at
// start (after warm-up), middle and end (idle, after the clients stopped).
//
// Then, per mode, H handoffs in a row under load (scripts/handoff-soak.mjs; default 5, 0 skips),
// clients through the proxy example (scripts/proxy-soak.mjs), and a hostile descriptor-passing
// peer (scripts/hostile-soak.mjs: SO_PASSCRED/SO_PASSPIDFD, 253 fds, SCM_CREDENTIALS, fds in
// flight at close; --hostile-seconds per mode, default 10, at most 60, 0 skips).
//
// Prints a table of figures and exits non-zero on any leaked fd, corrupted or lost byte on a
// connection that closed cleanly, unexpected error, or RSS growth above 10% after warm-up.
import { fork } from 'node:child_process'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as dgram from 'node:dgram'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def
}
const role = arg('role', 'main')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// =================================================================================================
// Server

async function server() {
  const { Reactor, AddressFamily, Protocol, DatagramProtocol, ConnectionDone, ConnectionAborted, sockets } = await import('reactor-socket')
  const thread = arg('mode', 'thread') !== 'no-thread'
  const stats = {
    accepted: 0,
    opened: 0,
    adoptedConns: 0,
    lostDone: 0,
    lostReset: 0,
    lostAborted: 0,
    lostOther: 0,
    lostTwice: 0,
    onError: 0,
    bytesEchoed: 0,
    dgrams: 0,
    slowStreams: 0,
    slowBytes: 0,
    pairEchoFailures: 0,
  }
  const errors = []
  const r = new Reactor({
    thread,
    onError: (e) => {
      stats.onError++
      if (errors.length < 10) errors.push(String(e?.stack ?? e))
    },
  })
  function lost(p, reason) {
    if (p.lostOnce) stats.lostTwice++
    p.lostOnce = true
    if (reason instanceof ConnectionDone) stats.lostDone++
    else if (reason instanceof ConnectionAborted) stats.lostAborted++
    else if (reason?.code === 'ECONNRESET' || reason?.code === 'EPIPE') stats.lostReset++
    else {
      stats.lostOther++
      if (errors.length < 10) errors.push(`connectionLost: ${reason}`)
    }
  }
  class Echo extends Protocol {
    connectionMade() {
      stats.opened++
    }
    dataReceived(d) {
      stats.bytesEchoed += d.length
      this.transport.write(d)
    }
    connectionLost(reason) {
      lost(this, reason)
    }
  }
  const spin = (us) => {
    const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000))
    while (process.hrtime.bigint() < end) {}
  }
  class Slow extends Protocol {
    connectionMade() {
      stats.opened++
      this.hash = crypto.createHash('sha256')
      this.n = 0
    }
    dataReceived(d) {
      this.hash.update(d)
      this.n += d.length
      stats.slowBytes += d.length
      spin(d.length / 50) // ~50 MB/s
      if ((this.n & ~0xfffff) !== ((this.n - d.length) & ~0xfffff) && Math.random() < 0.3) {
        this.transport.pauseProducing()
        setTimeout(() => this.transport.resumeProducing(), 5)
      }
    }
    readConnectionLost() {
      stats.slowStreams++
      this.transport.write(this.hash.digest('hex'))
      this.transport.loseConnection()
    }
    connectionLost(reason) {
      lost(this, reason)
    }
  }
  class UdpEcho extends DatagramProtocol {
    datagramReceived(d, a) {
      stats.dgrams++
      this.transport.write(d, [a.host, a.port])
    }
  }
  const adoptPort = (P) => {
    const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0, backlog: 1024 })
    const p = r.adoptStreamPort(fd, AddressFamily.INET, {
      buildProtocol: () => {
        stats.accepted++
        return new P()
      },
    })
    sockets.close(fd)
    return p
  }
  const echoPort = adoptPort(Echo)
  const slowPort = adoptPort(Slow)
  const ufd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
  const udpPort = r.adoptDatagramPort(ufd, AddressFamily.INET, new UdpEcho(), 2048)
  sockets.close(ufd)

  // every second: adopt one end of a socketpair, echo a message through it from a Node socket
  // on the other end, then close both
  const pairTimer = setInterval(() => {
    const [a, b] = sockets.socketPair()
    r.adoptStreamConnection(a, AddressFamily.UNIX, { buildProtocol: () => new Echo() })
    sockets.close(a)
    stats.adoptedConns++
    const s = new net.Socket({ fd: b, readable: true, writable: true })
    const msg = crypto.randomBytes(1000)
    let got = Buffer.alloc(0)
    const timer = setTimeout(() => {
      stats.pairEchoFailures++
      s.destroy()
    }, 5000)
    s.on('error', () => {})
    s.on('data', (d) => {
      got = Buffer.concat([got, d])
      if (got.length >= msg.length) {
        if (!got.equals(msg)) stats.pairEchoFailures++
        clearTimeout(timer)
        s.end()
      }
    })
    s.on('close', () => clearTimeout(timer))
    s.write(msg)
  }, 1000)

  const fdCount = () => fs.readdirSync('/proc/self/fd').length - 1 // minus the directory's own fd
  const sample = async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.()
      await sleep(20)
    }
    const m = process.memoryUsage()
    return {
      fds: fdCount(),
      rss: m.rss,
      heap: m.heapUsed,
      external: m.external,
      droppedDatagrams: udpPort.droppedDatagrams,
      live: stats.opened - (stats.lostDone + stats.lostReset + stats.lostAborted + stats.lostOther),
      ...stats,
      errors,
    }
  }
  process.on('message', async (m) => {
    if (m.type === 'sample') process.send({ type: 'sample', tag: m.tag, data: await sample() })
    else if (m.type === 'quiesce') {
      clearInterval(pairTimer)
      process.send({ type: 'quiesced' })
    } else if (m.type === 'stop') {
      await Promise.all([echoPort.stopListening(), slowPort.stopListening(), udpPort.stopListening()])
      await r.close()
      process.send({ type: 'stopped', data: await sample() }, () => process.exit(0))
    }
  })
  process.send({
    type: 'ready',
    echo: echoPort.getHost().port,
    slow: slowPort.getHost().port,
    udp: udpPort.getHost().port,
  })
}

// =================================================================================================
// Client

async function client() {
  const echoPort = Number(arg('echo'))
  const slowPort = Number(arg('slow'))
  const udpPort = Number(arg('udp'))
  const concurrency = Number(arg('clients', 24))
  let running = true
  const st = {
    connections: 0,
    clean: 0,
    resets: 0,
    bytesChecked: 0,
    corrupt: 0,
    lostBytes: 0,
    errors: 0,
    udpSent: 0,
    udpEchoed: 0,
    udpCorrupt: 0,
    udpGivenUp: 0,
    slowStreams: 0,
    slowBytes: 0,
    slowMismatch: 0,
  }
  const errors = []
  const fail = (what) => {
    st.errors++
    if (errors.length < 10) errors.push(what)
  }

  // ---- connect / echo / close churn, 10% resetting
  function oneConnection() {
    return new Promise((resolve) => {
      const reset = Math.random() < 0.1
      const messages = 1 + Math.floor(Math.random() * 8)
      const resetAfter = reset ? Math.floor(Math.random() * messages) : -1
      const sock = net.connect(echoPort, '127.0.0.1')
      st.connections++
      let sent = []
      let sentBytes = 0
      let recvBytes = 0
      let checkIdx = 0
      let checkOff = 0
      let done = false
      let i = 0
      const finish = (ok, why) => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (ok === 'clean') {
          st.clean++
          st.bytesChecked += recvBytes
          if (recvBytes !== sentBytes) {
            st.lostBytes += sentBytes - recvBytes
            fail(`clean connection lost ${sentBytes - recvBytes} bytes`)
          }
        } else if (ok === 'reset') st.resets++
        else fail(why)
        resolve()
      }
      const timer = setTimeout(() => {
        sock.destroy()
        finish('error', `timeout (sent ${sentBytes}, echoed ${recvBytes})`)
      }, 15000)
      const sendNext = () => {
        if (i === resetAfter) {
          // reset at a random point: sometimes with an echo still in flight
          if (Math.random() < 0.5) sock.write(crypto.randomBytes(1 + Math.floor(Math.random() * 65536)))
          setImmediate(() => {
            sock.resetAndDestroy()
            finish('reset')
          })
          return
        }
        if (i === messages) {
          sock.end()
          return
        }
        i++
        const n = 1 + Math.floor(Math.random() * 65536)
        const b = crypto.randomBytes(n)
        sent.push(b)
        sentBytes += n
        sock.write(b)
      }
      sock.on('connect', sendNext)
      sock.on('data', (d) => {
        // compare with what was sent, in order
        let off = 0
        while (off < d.length) {
          const cur = sent[checkIdx]
          if (!cur) {
            st.corrupt += d.length - off
            fail('echoed more than was sent')
            break
          }
          const take = Math.min(cur.length - checkOff, d.length - off)
          if (!d.subarray(off, off + take).equals(cur.subarray(checkOff, checkOff + take))) {
            st.corrupt += take
            fail('corrupted echo')
          }
          off += take
          checkOff += take
          if (checkOff === cur.length) {
            sent[checkIdx] = null
            checkIdx++
            checkOff = 0
          }
        }
        recvBytes += d.length
        if (recvBytes === sentBytes && !done) sendNext()
      })
      sock.on('error', (e) => {
        if (!done) finish('error', `clean connection error ${e.code}`)
      })
      sock.on('close', () => {
        if (!done) finish('clean')
      })
    })
  }
  async function churn() {
    while (running) await oneConnection()
  }

  // ---- UDP: datagrams with a sequence number and a checksum, echoed
  const u = dgram.createSocket('udp4')
  const pending = new Map()
  u.on('error', () => {})
  u.on('message', (m) => {
    const seq = m.readUInt32BE(0)
    const want = pending.get(seq)
    if (want === undefined) return
    pending.delete(seq)
    st.udpEchoed++
    if (!crypto.createHash('sha1').update(m).digest().equals(want)) {
      st.udpCorrupt++
      fail('corrupted datagram echo')
    }
  })
  await new Promise((r) => u.bind(0, '127.0.0.1', r))
  let seq = 0
  const udpTimer = setInterval(() => {
    for (let k = 0; k < 20; k++) {
      const b = crypto.randomBytes(16 + Math.floor(Math.random() * 1000))
      b.writeUInt32BE(seq, 0)
      pending.set(seq, crypto.createHash('sha1').update(b).digest())
      seq++
      st.udpSent++
      u.send(b, udpPort, '127.0.0.1')
    }
    // forget very old ones (lost datagrams are allowed; they are reported, not errors)
    if (pending.size > 20000) {
      for (const k of [...pending.keys()].slice(0, 10000)) pending.delete(k)
      st.udpGivenUp += 10000
    }
  }, 10)

  // ---- slow reader: 8 MiB streams, checked by hash
  async function slowLoop() {
    while (running) {
      await new Promise((resolve) => {
        const sock = net.connect(slowPort, '127.0.0.1')
        const hash = crypto.createHash('sha256')
        let answer = ''
        let left = 8 * 1024 * 1024
        const timer = setTimeout(() => {
          fail('slow reader timeout')
          sock.destroy()
          resolve()
        }, 60000)
        const pump = () => {
          while (left > 0) {
            const b = crypto.randomBytes(Math.min(left, 256 * 1024))
            left -= b.length
            hash.update(b)
            if (!sock.write(b)) return
          }
          sock.end()
        }
        sock.on('connect', pump)
        sock.on('drain', pump)
        sock.setEncoding('utf8')
        sock.on('data', (d) => (answer += d))
        sock.on('error', (e) => fail(`slow reader error ${e.code}`))
        sock.on('close', () => {
          clearTimeout(timer)
          st.slowStreams++
          st.slowBytes += 8 * 1024 * 1024
          if (answer !== hash.digest('hex')) {
            st.slowMismatch++
            fail('slow reader hash mismatch')
          }
          resolve()
        })
      })
    }
  }

  const loops = [...Array.from({ length: concurrency }, churn), slowLoop()]
  process.on('message', async (m) => {
    if (m.type === 'stop') {
      running = false
      clearInterval(udpTimer)
      await Promise.all(loops)
      await sleep(500) // the last UDP echoes
      u.close()
      process.send({ type: 'stats', data: { ...st, udpLost: pending.size + st.udpGivenUp, errorList: errors } }, () => process.exit(0))
    }
  })
  process.send({ type: 'running' })
}

// =================================================================================================
// Orchestrator

function startChild(args, execArgv = []) {
  const c = fork(SELF, args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiters = []
  const messages = []
  c.on('message', (m) => {
    messages.push(m)
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise((r) => c.once('exit', (code, signal) => r({ code, signal })))
  c.on('exit', () => {
    for (const w of waiters.splice(0)) w()
  })
  return {
    c,
    exited,
    async next(type, ms = 30000) {
      const deadline = Date.now() + ms
      for (;;) {
        const i = messages.findIndex((m) => m.type === type)
        if (i >= 0) return messages.splice(i, 1)[0]
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`${args.join(' ')} exited (${c.exitCode ?? c.signalCode}) before sending ${type}`)
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${type}`)
        await new Promise((r) => {
          waiters.push(r)
          setTimeout(r, 200)
        })
      }
    },
  }
}

async function runMode(mode, seconds, clients) {
  const srv = startChild(['--role', 'server', '--mode', mode], ['--expose-gc'])
  const ready = await srv.next('ready')
  await sleep(300)
  srv.c.send({ type: 'sample', tag: 'idle' })
  const idle = (await srv.next('sample')).data
  const cli = startChild([
    '--role', 'client', '--echo', String(ready.echo), '--slow', String(ready.slow), '--udp', String(ready.udp), '--clients', String(clients),
  ])
  await cli.next('running')
  const t0 = Date.now()
  const samples = []
  const at = async (frac, tag) => {
    const wait = t0 + frac * seconds * 1000 - Date.now()
    if (wait > 0) await sleep(wait)
    srv.c.send({ type: 'sample', tag })
    const s = (await srv.next('sample')).data
    s.t = (Date.now() - t0) / 1000
    s.tag = tag
    samples.push(s)
    return s
  }
  // warm-up: the first 20%; then a sample every 10% (start, ..., middle, ...)
  const start = await at(0.2, 'start')
  for (const f of [0.3, 0.4]) await at(f, `${Math.round(f * 100)}%`)
  const middle = await at(0.5, 'middle')
  for (const f of [0.6, 0.7, 0.8, 0.9]) await at(f, `${Math.round(f * 100)}%`)
  await sleep(Math.max(0, t0 + seconds * 1000 - Date.now()))
  cli.c.send({ type: 'stop' })
  const cstats = (await cli.next('stats', 120000)).data
  await cli.exited
  srv.c.send({ type: 'quiesce' })
  await srv.next('quiesced')
  // idle: every connection closed (the server counts its live connections)
  let end
  for (let k = 0; k < 50; k++) {
    await sleep(100)
    srv.c.send({ type: 'sample', tag: 'end' })
    end = (await srv.next('sample')).data
    if (end.live === 0 && end.fds <= idle.fds) break
  }
  end.t = (Date.now() - t0) / 1000
  end.tag = 'end'
  srv.c.send({ type: 'stop' })
  const stopped = (await srv.next('stopped')).data
  const exit = await srv.exited
  return { mode, seconds, idle, start, middle, end, samples, stopped, exit, client: cstats }
}

function judge(r) {
  const problems = []
  const fdsLeaked = r.end.fds - r.idle.fds
  if (fdsLeaked !== 0) problems.push(`${fdsLeaked} fd(s) leaked (idle ${r.idle.fds} before the load, ${r.end.fds} after)`)
  if (r.stopped.fds > r.idle.fds) problems.push(`after reactor.close(): ${r.stopped.fds} fds, more than the ${r.idle.fds} before the load`)
  const maxRss = Math.max(r.middle.rss, r.end.rss, ...r.samples.filter((s) => s.t >= r.start.t).map((s) => s.rss))
  const growth = (maxRss - r.start.rss) / r.start.rss
  if (growth > 0.1) problems.push(`RSS grew ${(growth * 100).toFixed(1)}% after warm-up (limit 10%)`)
  const c = r.client
  if (c.corrupt) problems.push(`${c.corrupt} corrupted bytes`)
  if (c.lostBytes) problems.push(`${c.lostBytes} bytes lost on cleanly closed connections`)
  if (c.errors) problems.push(`${c.errors} client errors: ${c.errorList.join('; ')}`)
  if (c.udpCorrupt) problems.push(`${c.udpCorrupt} corrupted datagrams`)
  if (c.slowMismatch) problems.push(`${c.slowMismatch} slow-reader hash mismatches`)
  if (r.end.onError) problems.push(`${r.end.onError} exceptions reported by the server: ${r.end.errors.join('; ')}`)
  if (r.end.lostOther) problems.push(`${r.end.lostOther} connections lost for an unexpected reason: ${r.end.errors.join('; ')}`)
  if (r.end.lostTwice) problems.push(`connectionLost called twice ${r.end.lostTwice} times`)
  if (r.end.pairEchoFailures) problems.push(`${r.end.pairEchoFailures} adopted socketpair echoes failed`)
  if (r.exit.code !== 0 || r.exit.signal) problems.push(`the server exited with ${r.exit.code ?? r.exit.signal}`)
  if (c.clean === 0 || c.resets === 0 || c.udpEchoed === 0 || c.slowStreams === 0) problems.push('some part of the load did not run')
  return { problems, fdsLeaked, rssGrowth: growth }
}

const MiB = 1024 * 1024
const fmtMiB = (b) => (b / MiB).toFixed(1)

function report(results) {
  const lines = []
  const row = (cells) => lines.push('| ' + cells.join(' | ') + ' |')
  for (const { r, j } of results) {
    const c = r.client
    lines.push('')
    lines.push(`### mode: ${r.mode} (${r.seconds} s)`)
    lines.push('')
    row(['sample', 't (s)', 'server fds', 'RSS (MiB, after GC)', 'heap (MiB)', 'live conns', 'accepted so far'])
    row(['---', '---', '---', '---', '---', '---', '---'])
    row(['idle, before load', '-', r.idle.fds, fmtMiB(r.idle.rss), fmtMiB(r.idle.heap), r.idle.live, r.idle.accepted])
    for (const s of [r.start, r.middle]) row([s.tag, s.t.toFixed(0), s.fds, fmtMiB(s.rss), fmtMiB(s.heap), s.live, s.accepted])
    row(['end, idle after load', r.end.t.toFixed(0), r.end.fds, fmtMiB(r.end.rss), fmtMiB(r.end.heap), r.end.live, r.end.accepted])
    row(['after reactor.close()', '-', r.stopped.fds, fmtMiB(r.stopped.rss), fmtMiB(r.stopped.heap), '-', '-'])
    lines.push('')
    row(['figure', 'value'])
    row(['---', '---'])
    row(['TCP connections (client side)', `${c.connections}: ${c.clean} closed cleanly, ${c.resets} reset on purpose (${((100 * c.resets) / Math.max(1, c.connections)).toFixed(1)}%)`])
    row(['accepted by the server (echo + slow reader) / adopted socketpairs', `${r.end.accepted} / ${r.end.adoptedConns}`])
    row(['server connectionLost reasons', `done ${r.end.lostDone}, reset ${r.end.lostReset}, aborted ${r.end.lostAborted}, other ${r.end.lostOther}, twice ${r.end.lostTwice}`])
    row(['bytes echoed and checked (clean connections)', `${c.bytesChecked} (${fmtMiB(c.bytesChecked)} MiB)`])
    row(['corrupted bytes / bytes lost on clean connections', `${c.corrupt} / ${c.lostBytes}`])
    row(['slow reader: streams, MiB, hash mismatches', `${c.slowStreams}, ${fmtMiB(c.slowBytes)}, ${c.slowMismatch}`])
    const pct = (n) => `${((100 * n) / Math.max(1, c.udpSent)).toFixed(1)}%`
    row(['UDP: sent / received by the server / echoed back and checked', `${c.udpSent} / ${r.end.dgrams} / ${c.udpEchoed}`])
    row(['UDP: corrupted / lost (allowed for UDP) / server droppedDatagrams', `${c.udpCorrupt} / ${c.udpLost} (${pct(c.udpLost)}) / ${r.end.droppedDatagrams} (${pct(r.end.droppedDatagrams)})`])
    row(['errors (client / server onError)', `${c.errors} / ${r.end.onError}`])
    row(['fds leaked (end idle − before load)', j.fdsLeaked])
    row(['RSS growth after warm-up (max of samples vs start)', `${(j.rssGrowth * 100).toFixed(1)}%`])
    row(['server exit', `${r.exit.code ?? r.exit.signal}`])
    row(['verdict', j.problems.length ? 'FAIL: ' + j.problems.join('; ') : 'PASS'])
  }
  return lines.join('\n')
}

async function main() {
  const seconds = Number(arg('seconds', 150))
  const which = arg('mode', 'both')
  const clients = Number(arg('clients', 24))
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number')
  const modes = which === 'both' ? ['thread', 'no-thread'] : [which]
  const per = seconds / modes.length
  const results = []
  console.log(`soak: ${seconds} s in total, modes ${modes.join(', ')}, ${clients} concurrent clients`)
  for (const mode of modes) {
    const r = await runMode(mode, per, clients)
    const j = judge(r)
    results.push({ r, j })
    console.log(`  ${mode}: ${j.problems.length ? 'FAIL' : 'PASS'}`)
  }
  console.log(report(results))
  // Last phase: handoffs under load (scripts/handoff-soak.mjs); --handoffs 0 skips it.
  const handoffs = Number(arg('handoffs', 5))
  const handoffResults = []
  if (handoffs > 0) {
    const { handoffUnderLoad, describe } = await import('./handoff-soak.mjs')
    console.log('')
    for (const mode of modes) {
      const h = await handoffUnderLoad({ thread: mode !== 'no-thread', handoffs })
      handoffResults.push(h)
      console.log(`handoff ${describe(h)}: ${h.problems.length ? 'FAIL: ' + h.problems.join('; ') : 'PASS'}`)
    }
  }
  // Proxy phase: clients through examples/proxy.js (scripts/proxy-soak.mjs); --proxy-seconds 0 skips it.
  const proxySeconds = Number(arg('proxy-seconds', 20))
  const proxyResults = []
  if (proxySeconds > 0) {
    const { proxyUnderLoad, describe } = await import('./proxy-soak.mjs')
    console.log('')
    for (const mode of modes) {
      const p = await proxyUnderLoad({ thread: mode !== 'no-thread', seconds: proxySeconds })
      proxyResults.push(p)
      console.log(`${describe(p)}: ${p.problems.length ? 'FAIL: ' + p.problems.join('; ') : 'PASS'}`)
    }
  }
  // Hostile phase: a descriptor-passing peer that misbehaves (scripts/hostile-soak.mjs), bounded:
  // --hostile-seconds per mode (default 10, at most 60); 0 skips it.
  const hostileSeconds = Math.min(60, Number(arg('hostile-seconds', 10)))
  const hostileResults = []
  if (hostileSeconds > 0) {
    const { hostileUnderLoad, describe } = await import('./hostile-soak.mjs')
    console.log('')
    for (const mode of modes) {
      const h = await hostileUnderLoad({ thread: mode !== 'no-thread', seconds: hostileSeconds })
      hostileResults.push(h)
      console.log(`${describe(h)}: ${h.problems.length ? 'FAIL: ' + h.problems.join('; ') : 'PASS'}`)
    }
  }
  const json = arg('json', null)
  if (json !== null) fs.writeFileSync(json, JSON.stringify({ results, handoffs: handoffResults, proxy: proxyResults, hostile: hostileResults }, null, 2))
  const failed =
    results.some(({ j }) => j.problems.length > 0) ||
    handoffResults.some((h) => h.problems.length > 0) ||
    proxyResults.some((p) => p.problems.length > 0) ||
    hostileResults.some((h) => h.problems.length > 0)
  console.log(failed ? '\nsoak: FAIL' : '\nsoak: PASS')
  process.exit(failed ? 1 : 0)
}

if (role === 'server') await server()
else if (role === 'client') await client()
else await main()
