// Memory benchmark client (its own process, so its buffers are not counted against the server).
//   node memory-client.js blast <port> <bytes>   sends <bytes> of a pattern, prints its sha256
//   node memory-client.js idle <port> <count>    opens <count> connections and keeps them open
'use strict'
const crypto = require('node:crypto')
const net = require('node:net')

const [what, port, n] = process.argv.slice(2)

if (what === 'blast') {
  const total = Number(n)
  const chunk = Buffer.alloc(1 << 20)
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) % 251
  const hash = crypto.createHash('sha256')
  const socket = net.connect(Number(port), '127.0.0.1', () => {
    let sent = 0
    const pump = () => {
      while (sent < total) {
        const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent)
        hash.update(piece)
        sent += piece.length
        if (!socket.write(piece)) return socket.once('drain', pump)
      }
      socket.end(() => process.stdout.write(JSON.stringify({ bytes: sent, sha256: hash.digest('hex') }) + '\n'))
    }
    pump()
  })
} else {
  const count = Number(n)
  const open = []
  let made = 0
  let failed = 0
  const more = () => {
    // A few hundred at a time, so the listener's backlog is never the limit.
    for (let i = 0; i < 200 && made < count; i++, made++) {
      // Each from its own loopback source address in turn (127.0.0.2 to 127.0.0.201): after the
      // connect-heavy rows, TIME_WAIT can hold most of one address's ephemeral ports.
      const s = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: `127.0.0.${2 + (made % 200)}` })
      s.on('error', (err) => {
        if (failed++ === 0) process.stderr.write(`memory-client: a connection failed: ${err.code ?? err.message}\n`)
      })
      open.push(s)
    }
    if (made < count) setTimeout(more, 10)
    else process.stdout.write('connected\n')
  }
  more()
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
}
