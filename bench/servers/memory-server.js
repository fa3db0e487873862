// Memory benchmark server. Inherits a listening TCP socket as fd 3.
//   node memory-server.js <thread|hosted|node> paused <pauseMs>   one connection, paused while the peer sends
//   node memory-server.js <thread|hosted|node> idle <count>       holds <count> idle connections
// Prints one JSON line with its findings.
'use strict'
const crypto = require('node:crypto')
const net = require('node:net')

const [mode, test, arg] = process.argv.slice(2)
const rssMiB = () => process.memoryUsage().rss / 2 ** 20

function settle() {
  if (global.gc) global.gc()
  return rssMiB()
}

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** A connection's consumer: pause at once, resume after `pauseMs`, hash everything. */
function pausedConsumer({ pause, resume, onResumed }) {
  const hash = crypto.createHash('sha256')
  let bytes = 0
  let peak = 0
  const base = settle()
  pause()
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB())), 20)
  setTimeout(() => {
    const pausedGrowth = Math.max(peak, rssMiB()) - base
    onResumed(pausedGrowth)
    resume()
  }, Number(arg))
  return {
    data(chunk) {
      hash.update(chunk)
      bytes += chunk.length
    },
    end(pausedGrowth) {
      clearInterval(sampler)
      report({ bytes, sha256: hash.digest('hex'), pausedGrowthMiB: pausedGrowth, peakGrowthMiB: Math.max(peak, rssMiB()) - base })
    },
  }
}

if (mode === 'node') {
  let count = 0
  let base = 0
  const server = net.createServer((socket) => {
    if (test === 'paused') {
      let growth = 0
      const consumer = pausedConsumer({ pause: () => socket.pause(), resume: () => socket.resume(), onResumed: (g) => (growth = g) })
      socket.on('data', (d) => consumer.data(d))
      socket.on('end', () => {
        consumer.end(growth)
        process.exit(0)
      })
    } else if (++count === Number(arg)) {
      setTimeout(() => report({ connections: count, rssPerConnectionKiB: ((settle() - base) * 1024) / count }), 200)
    }
  })
  server.listen({ fd: 3 }, () => {
    base = settle()
    process.stdout.write('ready\n')
  })
} else {
  const { Reactor, AddressFamily, Protocol, sockets } = require('../..')
  const reactor = new Reactor({ thread: mode !== 'hosted' })
  let count = 0
  let base = 0
  class Paused extends Protocol {
    connectionMade() {
      this.growth = 0
      this.consumer = pausedConsumer({
        pause: () => this.transport.pauseProducing(),
        resume: () => this.transport.resumeProducing(),
        onResumed: (g) => (this.growth = g),
      })
    }
    dataReceived(data) {
      this.consumer.data(data)
    }
    connectionLost() {
      this.consumer.end(this.growth)
      reactor.close().then(() => process.exit(0))
    }
  }
  class Idle extends Protocol {
    connectionMade() {
      if (++count === Number(arg)) {
        setTimeout(() => report({ connections: count, rssPerConnectionKiB: ((settle() - base) * 1024) / count }), 200)
      }
    }
  }
  base = settle()
  reactor.adoptStreamPort(3, AddressFamily.INET, { buildProtocol: () => (test === 'paused' ? new Paused() : new Idle()) })
  sockets.close(3)
  process.stdout.write('ready\n')
}
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
