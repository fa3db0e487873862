// Benchmark server: a UDP forwarder on Node's dgram, as a user would write one with what Node has:
// on the inherited UDP socket (fd 3), a session per client address, each with its own dgram socket
// connected to the upstream (so replies come back by the kernel's demultiplexing, as in this
// package's forwarder and nginx's), an idle timeout, and `responses` like nginx's proxy_responses.
//   node node-udp-proxy.js <upstreamPort> [responses]
'use strict'
const dgram = require('node:dgram')

const [upstreamPort, responsesArg] = process.argv.slice(2)
const responses = responsesArg ? Number(responsesArg) : Infinity
const IDLE_MS = 10_000
const sessions = new Map() // "host:port" → session
let created = 0
let forwarded = 0

const front = dgram.createSocket('udp4')
// With an fd, bind emits 'listening' at once: the handler goes first.
front.on('listening', () => process.stdout.write('ready\n'))
front.bind({ fd: 3 })
front.on('message', (msg, rinfo) => {
  const key = `${rinfo.address}:${rinfo.port}`
  let s = sessions.get(key)
  if (s === undefined) {
    s = { socket: dgram.createSocket('udp4'), requests: 0, replies: 0, pending: [], connected: false, timer: null }
    sessions.set(key, s)
    created++
    const session = s
    session.socket.on('message', (reply) => {
      front.send(reply, rinfo.port, rinfo.address)
      session.replies++
      touch(key, session)
      if (session.replies >= responses * session.requests) end(key, session)
    })
    session.socket.on('error', () => end(key, session))
    session.socket.connect(Number(upstreamPort), '127.0.0.1', () => {
      session.connected = true
      for (const m of session.pending) session.socket.send(m)
      session.pending = []
    })
  }
  s.requests++
  forwarded++
  touch(key, s)
  if (s.connected) s.socket.send(msg)
  else s.pending.push(msg)
})

function touch(key, s) {
  s.last = Date.now()
  s.timer ??= setTimeout(function expire() {
    const left = s.last + IDLE_MS - Date.now()
    if (left > 0) s.timer = setTimeout(expire, left)
    else end(key, s)
  }, IDLE_MS)
}

function end(key, s) {
  if (sessions.get(key) !== s) return
  sessions.delete(key)
  clearTimeout(s.timer)
  s.socket.close()
}

process.stdin.on('end', () => {
  process.stdout.write(`proxy ${JSON.stringify({ sessionsCreated: created, datagramsFromClients: forwarded })}\n`)
  process.exit(0)
})
process.stdin.resume()
