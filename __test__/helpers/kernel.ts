// What the kernel holds for a socket, read from /proc/net/{tcp,tcp6,udp,udp6} (the same numbers
// `ss` shows, without needing ss). Tests that prove something does NOT happen wait first for the
// bytes to be in the kernel, so that their quiet period only covers the reactor's reaction time.
import * as fs from 'node:fs'
import type * as net from 'node:net'
import { linkOf } from './fds.js'

export interface ProcNetEntry {
  /** TCP state as the kernel numbers it (1 ESTABLISHED, 4 FIN_WAIT1, 5 FIN_WAIT2, …); 7 for UDP. */
  state: number
  /** TCP: bytes sent but not yet acknowledged. UDP: memory held by queued outgoing datagrams. */
  txQueue: number
  /** TCP: bytes received but not yet read. UDP: memory held by queued incoming datagrams. */
  rxQueue: number
  /** UDP only: datagrams the kernel dropped at this socket (its receive buffer was full). */
  drops?: number | undefined
}

const TCP_ESTABLISHED = 1
const TCP_FIN_WAIT1 = 4
const TCP_CLOSE_WAIT = 8
const TCP_LAST_ACK = 9
const TCP_CLOSING = 11
/** States in which a FIN we sent may still be unacknowledged. */
const FIN_IN_FLIGHT = [TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_CLOSING]

/** The inode of the socket behind `fd` (stays valid, as a name of the socket, after the fd closes). */
export function socketInode(fd: number): number {
  const m = /^socket:\[(\d+)\]$/.exec(linkOf(fd))
  if (!m) throw new Error(`fd ${fd} is not a socket (${linkOf(fd)})`)
  return Number(m[1])
}

/** Ends of a connection by port, for a socket of another process (its inode is not ours to read). */
export interface PortPair {
  localPort: number
  remotePort: number
}

const portOfColumn = (addr: string) => parseInt(addr.slice(addr.lastIndexOf(':') + 1), 16)

/**
 * The /proc/net entry of the IP socket with this inode (or these ports, in this network
 * namespace); undefined once it is gone, or for a UNIX socket.
 */
export function procNetEntry(which: number | PortPair): ProcNetEntry | undefined {
  for (const file of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const lines = fs.readFileSync(`/proc/net/${file}`, 'utf8').split('\n').slice(1)
    for (const line of lines) {
      // sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode … (udp: … drops)
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      const match =
        typeof which === 'number'
          ? Number(cols[9]) === which
          : portOfColumn(cols[1]) === which.localPort && portOfColumn(cols[2]) === which.remotePort
      if (!match) continue
      const [tx, rx] = cols[4].split(':').map((h) => parseInt(h, 16))
      const drops = file.startsWith('udp') ? Number(cols[12]) : undefined
      return { state: parseInt(cols[3], 16), txQueue: tx, rxQueue: rx, drops }
    }
  }
  return undefined
}

/** Bytes (TCP) or datagram memory (UDP) waiting unread in the receive queue of a socket. */
export const receiveQueue = (which: number | PortPair) => procNetEntry(which)?.rxQueue ?? 0

/** libuv's handle of a Node socket: private fields, but stable on Linux for TCP and pipes. */
const handleOf = (sock: net.Socket): { fd: number; writeQueueSize: number } => (sock as any)._handle

/** The inode of the socket a Node net.Socket wraps. */
export function nodeSocketInode(sock: net.Socket): number {
  const fd = handleOf(sock)?.fd
  if (typeof fd !== 'number' || fd < 0) throw new Error('this Node socket has no fd')
  return socketInode(fd)
}

/**
 * True once part of what a Node socket was asked to write has gone to the kernel: libuv's own
 * queue is shorter than what Node still counts as pending (Node writes synchronously as far as
 * the kernel takes it). For a UNIX stream socket that part is then at the receiver.
 */
export function partlyWritten(sock: net.Socket): boolean {
  return sock.writableLength === 0 || handleOf(sock).writeQueueSize < sock.writableLength
}

/**
 * True once everything a Node socket was asked to write (and its FIN, after end()) is in the other
 * end's kernel: libuv handed it all over, and for TCP the other end acknowledged it (on loopback
 * the receiving kernel acknowledges what it queued). A UNIX stream socket queues the bytes at the
 * receiver inside write(2) and shutdown(2) itself, so handing over is enough there.
 */
export function writtenIntoPeerKernel(sock: net.Socket): boolean {
  if (sock.destroyed) {
    // closed after all was handed over (the kernel still delivers it), or lost with bytes unsent
    if (sock.writableFinished) return true
    throw new Error('the Node socket was destroyed before its bytes were handed to the kernel')
  }
  if (sock.writableLength > 0 || (sock.writableEnded && !sock.writableFinished)) return false
  const entry = procNetEntry(nodeSocketInode(sock))
  if (!entry) return true // UNIX, or the TCP connection is gone altogether
  if (entry.txQueue > 0) return false
  return !(sock.writableFinished && FIN_IN_FLIGHT.includes(entry.state))
}
