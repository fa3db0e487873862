'use strict'
// An echo server for systemd socket activation. It creates no socket: it takes the ones systemd
// passed (systemd.listenFds(), names from FileDescriptorName=), adopts each into the reactor,
// tells systemd it is ready (Type=notify), pets the watchdog if one is set, and stops cleanly on
// SIGTERM. Runs unchanged under systemd (echo.socket + echo.service here) and under
// `systemd-socket-activate -l 127.0.0.1:8080 --fdname=web node server.js`.
//
// Environment: REACTOR_THREAD=0 drives the reactor from Node's own loop (thread: false).
const {
  Reactor, AddressFamily, SocketType, ServerFactory, Protocol, DatagramProtocol, systemd, sockets,
} = require('../..')

const reactor = new Reactor({ thread: process.env.REACTOR_THREAD !== '0' })
const log = (line) => process.stdout.write(line + '\n')

// A notification that cannot be delivered (the manager went away) is worth a line, not a crash.
function notify(state) {
  try {
    return systemd.notify(state)
  } catch (err) {
    process.stderr.write(`notify ${JSON.stringify(state)}: ${err.message}\n`)
    return false
  }
}

class Echo extends Protocol {
  dataReceived(data) {
    this.transport.write(data)
  }
}

class DatagramEcho extends DatagramProtocol {
  datagramReceived(data, addr) {
    this.transport.write(data, [addr.host, addr.port])
  }
}

/** @type {number[]} */
const IP_FAMILIES = [AddressFamily.INET, AddressFamily.INET6]
const ports = []
const served = []
for (const { fd, name, family, type, listening } of systemd.listenFds()) {
  if (type === SocketType.STREAM && listening) {
    ports.push(reactor.adoptStreamPort(fd, family, ServerFactory.forProtocol(Echo)))
  } else if (type === SocketType.DGRAM && IP_FAMILIES.includes(family)) {
    ports.push(reactor.adoptDatagramPort(fd, family, new DatagramEcho()))
  } else {
    log(`skipping fd ${fd} (${name}): not a listening stream or an IP datagram socket`)
    continue
  }
  sockets.close(fd) // the reactor holds its own duplicate
  served.push({ fd, name, family, type })
}

if (ports.length === 0) {
  process.stderr.write('no sockets were passed (LISTEN_FDS); run me under systemd or systemd-socket-activate\n')
  process.exit(1)
}

notify(`READY=1\nSTATUS=echoing on ${served.map((s) => s.name).join(', ')}`)
log('READY ' + JSON.stringify({ pid: process.pid, listeners: served }))

// WatchdogSec= in the unit: systemd restarts us unless we say we are alive in time.
const watchdog = systemd.watchdogInterval()
if (watchdog !== null) setInterval(() => notify('WATCHDOG=1'), watchdog / 2).unref()

process.once('SIGTERM', async () => {
  notify('STOPPING=1')
  await Promise.all(ports.map((port) => port.stopListening()))
  await reactor.close()
  log('STOPPED')
})
