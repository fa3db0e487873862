'use strict'
// reactor-socket demo: socket handoff from a parent process, the way systemd socket activation
// does it. This process makes a listening TCP socket and a UDP socket (127.0.0.1, kernel-chosen
// ports), hands both to a child as fds 3 and 4 with LISTEN_FDS=2, and closes its own copies.
// The child (demo-server.js) adopts them into the reactor and echoes. This process then talks to
// it with Node's own net and dgram, asks it to quit, and checks that it exits with code 0.
// Every wait has a deadline; a missed one prints what was awaited and exits 1.
const { spawn } = require('node:child_process')
const dgram = require('node:dgram')
const net = require('node:net')
const path = require('node:path')
const readline = require('node:readline')
const { sockets } = require('..')

const TCP_CLIENTS = 3
const MESSAGES_PER_CLIENT = 3
const DATAGRAMS = 5
const STEP_TIMEOUT_MS = 5000
const TOTAL_TIMEOUT_MS = 15000

const started = Date.now()
let child = null

function fail(err) {
  console.error(`demo FAILED: ${err && err.stack ? err.stack : err}`)
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  process.exit(1)
}
process.on('unhandledRejection', fail)
setTimeout(() => fail(new Error(`the whole demo took more than ${TOTAL_TIMEOUT_MS} ms`)), TOTAL_TIMEOUT_MS).unref()

/** Resolves with the promise's value, or rejects if it takes longer than `ms`. */
function within(what, promise, ms = STEP_TIMEOUT_MS) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// --- child output: echoed with a prefix; waiters get each line ------------------------------
const lineWaiters = new Set()
function waitForLines(what, predicate, count = 1) {
  return within(what, new Promise((resolve) => {
    let seen = 0
    const waiter = (line) => {
      if (predicate(line) && ++seen === count) { lineWaiters.delete(waiter); resolve() }
    }
    lineWaiters.add(waiter)
  }))
}

// --- clients ---------------------------------------------------------------------------------
function tcpClient(port, i) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let received = ''
    let sent = ''
    let j = 0
    const sendNext = () => {
      const msg = `client ${i} message ${++j}\n`
      sent += msg
      socket.write(msg)
    }
    socket.setEncoding('utf8')
    socket.on('error', reject)
    socket.on('connect', sendNext)
    socket.on('data', (chunk) => {
      received += chunk
      if (received.length < sent.length) return
      if (received !== sent) return reject(new Error(`client ${i}: echo mismatch: ${JSON.stringify(received)}`))
      if (j < MESSAGES_PER_CLIENT) sendNext()
      else socket.end() // our FIN: the server flushes, closes, and its protocol sees ConnectionDone
    })
    socket.on('close', (hadError) => {
      if (hadError) return
      if (j < MESSAGES_PER_CLIENT || received !== sent) return reject(new Error(`client ${i}: closed early`))
      resolve(Buffer.byteLength(sent))
    })
  })
}

async function udpClient(port) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(undefined)))
  const expected = new Set()
  let bytes = 0
  const allEchoed = new Promise((resolve, reject) => {
    socket.on('error', reject)
    socket.on('message', (msg) => {
      if (!expected.delete(msg.toString())) return reject(new Error(`unexpected datagram ${msg}`))
      bytes += msg.length
      if (expected.size === 0) resolve()
    })
  })
  for (let k = 1; k <= DATAGRAMS; k++) {
    const msg = `datagram ${k}`
    expected.add(msg)
    socket.send(msg, port, '127.0.0.1')
  }
  await within(`${DATAGRAMS} UDP echoes`, allEchoed)
  await new Promise((resolve) => socket.send('quit', port, '127.0.0.1', resolve))
  socket.close()
  return bytes
}

// --- main ------------------------------------------------------------------------------------
async function main() {
  const tcpFd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const udpFd = sockets.bindUdp({ host: '127.0.0.1', port: 0 })
  const tcpPort = sockets.info(tcpFd).local.port
  const udpPort = sockets.info(udpFd).local.port
  console.log(`parent: made TCP listener fd ${tcpFd} (127.0.0.1:${tcpPort}) and UDP fd ${udpFd} (127.0.0.1:${udpPort})`)

  // stdio entries 3 and 4 become the child's fds 3 and 4, as systemd passes them (SD_LISTEN_FDS_START).
  // systemd would also set LISTEN_PID to the child's pid, which is unknown before spawn returns;
  // the child therefore accepts an absent LISTEN_PID (see listenFds() in demo-server.js).
  child = spawn(process.execPath, [path.join(__dirname, 'demo-server.js')], {
    stdio: ['ignore', 'pipe', 'inherit', tcpFd, udpFd],
    env: { ...process.env, LISTEN_FDS: '2', LISTEN_FDNAMES: 'echo-tcp:echo-udp' },
  })
  // The child has its own copies now; ours can go. The sockets live on in the child alone.
  sockets.close(tcpFd)
  sockets.close(udpFd)
  console.log(`parent: started server pid ${child.pid} with fds 3 and 4, closed our copies`)

  let stopping = false
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  exited.then(({ code, signal }) => {
    if (!stopping) fail(new Error(`server exited early (code ${code}, signal ${signal})`))
  })
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    console.log(`  server | ${line}`)
    for (const waiter of lineWaiters) waiter(line)
  })

  await waitForLines('the server to print "ready"', (l) => l === 'ready')

  const closedLines = waitForLines(`${TCP_CLIENTS} "closed" lines from the server`, (l) => /^tcp #\d+ closed/.test(l), TCP_CLIENTS)
  const tcpBytes = await within(`${TCP_CLIENTS} TCP echo clients`,
    Promise.all(Array.from({ length: TCP_CLIENTS }, (_, i) => tcpClient(tcpPort, i + 1))))
  await closedLines

  const udpBytes = await udpClient(udpPort) // ends with the "quit" datagram
  stopping = true
  const { code, signal } = await within('the server to exit by itself', exited)
  if (code !== 0) throw new Error(`server exited with code ${code}, signal ${signal}`)

  const total = tcpBytes.reduce((a, b) => a + b, 0)
  console.log(`parent: ${TCP_CLIENTS} TCP clients x ${MESSAGES_PER_CLIENT} messages echoed (${total} bytes), ` +
    `${DATAGRAMS} datagrams echoed (${udpBytes} bytes), server exited with code 0`)
  console.log(`demo ok in ${Date.now() - started} ms`)
}

main().catch(fail)
