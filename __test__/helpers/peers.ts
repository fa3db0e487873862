// The other end of the wire: Node's own net and dgram sockets on loopback or UNIX sockets,
// recording what they receive.
import * as net from 'node:net'
import * as dgram from 'node:dgram'
import { AddressFamily, sockets, type Reactor } from 'reactor-socket'
import { within, waitUntil } from './waits.js'
import { track, untrack, closeFd, listenTcp4, listenTcp6, listenUnixFd, portOf } from './raw-sockets.js'
import { Rec, RecFactory } from './recorders.js'
import { writtenIntoPeerKernel, socketInode } from './kernel.js'

export class Peer {
  chunks: Buffer[] = []
  error: (Error & { code?: string }) | undefined
  ended = false
  closed = false
  readonly endP: Promise<void>
  readonly closeP: Promise<boolean>
  constructor(public sock: net.Socket) {
    sock.on('data', (d: Buffer) => this.chunks.push(d))
    sock.on('error', (e) => {
      this.error = e
    })
    this.endP = new Promise((r) =>
      sock.once('end', () => {
        this.ended = true
        r()
      }),
    )
    this.closeP = new Promise((r) =>
      sock.once('close', (hadError: boolean) => {
        this.closed = true
        r(hadError)
      }),
    )
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks)
  }
  get text(): string {
    return this.data.toString()
  }
  waitBytes(n: number, ms = 10000) {
    return waitUntil(() => this.data.length >= n, () => `${n} bytes at the peer (have ${this.data.length})`, ms)
  }
  waitText(s: string, ms = 10000) {
    return waitUntil(() => this.text.includes(s), () => `peer text ${JSON.stringify(s)} (have ${JSON.stringify(this.text.slice(-80))})`, ms)
  }
  waitEnd(ms = 10000) {
    return within(this.endP, 'peer end', ms)
  }
  waitClose(ms = 10000) {
    return within(this.closeP, 'peer close', ms)
  }
  /** Waits until all this peer wrote (and its FIN, after end()) is in the other end's kernel. */
  waitDelivered(ms = 10000) {
    return waitUntil(() => writtenIntoPeerKernel(this.sock), "the peer's bytes in the kernel at the other end", ms)
  }
  destroy() {
    this.sock.destroy()
  }
}

export function nodeClient(
  target: number | string,
  host = '127.0.0.1',
  opts: Partial<net.NetConnectOpts> = {},
): Promise<Peer> {
  return within(
    new Promise<Peer>((resolve, reject) => {
      const o: any = typeof target === 'string' ? { path: target, ...opts } : { port: target, host, ...opts }
      const sock = net.connect(o)
      const peer = new Peer(sock)
      sock.once('connect', () => resolve(peer))
      sock.once('error', reject)
    }),
    'client connect',
  )
}

/** A TCP client connected by the kernel (blocking connect) before anyone accepts, as a Node socket. */
export function rawClient(port: number, host = '127.0.0.1', opts: Partial<net.SocketConstructorOpts> = {}): Peer {
  return wrapFd(track(sockets.connectTcp(host, port)), opts)
}

/** Wraps a raw stream fd in a Node socket (Node takes ownership of the fd). */
export function wrapFd(fd: number, opts: Partial<net.SocketConstructorOpts> = {}): Peer {
  untrack(fd)
  return new Peer(new net.Socket({ fd, readable: true, writable: true, ...opts }))
}

export type PairKind = 'v4' | 'v6' | 'unix'
export const PAIR_KINDS: PairKind[] = ['v4', 'v6', 'unix']
const familyOf = (k: PairKind) => (k === 'v4' ? AddressFamily.INET : k === 'v6' ? AddressFamily.INET6 : AddressFamily.UNIX)

export interface AdoptablePair {
  fd: number
  peer: Peer
  family: number
  serverPort?: number
  cleanup: () => void
}

/**
 * A connected stream fd for adoptStreamConnection and a Node socket at the other end.
 * TCP: a Node server accepts the connection that sockets.connectTcp makes. UNIX: socketPair.
 */
export async function adoptablePair(kind: PairKind, peerOpts: { allowHalfOpen?: boolean } = {}): Promise<AdoptablePair> {
  if (kind === 'unix') {
    const [a, b] = sockets.socketPair()
    track(a)
    const peer = wrapFd(b, { allowHalfOpen: !!peerOpts.allowHalfOpen })
    return { fd: a, peer, family: AddressFamily.UNIX, cleanup: () => peer.destroy() }
  }
  const host = kind === 'v4' ? '127.0.0.1' : '::1'
  const server = net.createServer({ allowHalfOpen: !!peerOpts.allowHalfOpen })
  await within(new Promise<void>((r) => server.listen(0, host, r)), 'node server listen')
  const serverPort = (server.address() as net.AddressInfo).port
  const conn = within(new Promise<net.Socket>((r) => server.once('connection', r)), 'node server connection')
  const fd = track(sockets.connectTcp(host, serverPort))
  const peer = new Peer(await conn)
  return {
    fd,
    peer,
    family: familyOf(kind),
    serverPort,
    cleanup: () => {
      peer.destroy()
      server.close()
    },
  }
}

/** Listening fd of a kind, and how to connect a Node client to it. */
export function listenerOf(kind: PairKind): { fd: number; family: number; connect: () => Promise<Peer>; path?: string } {
  if (kind === 'unix') {
    const { fd, path: p } = listenUnixFd()
    return { fd, family: AddressFamily.UNIX, path: p, connect: () => nodeClient(p) }
  }
  const fd = kind === 'v4' ? listenTcp4() : listenTcp6()
  const host = kind === 'v4' ? '127.0.0.1' : '::1'
  const port = portOf(fd)
  return { fd, family: familyOf(kind), connect: () => nodeClient(port, host) }
}

export class UdpPeer {
  got: { data: Buffer; rinfo: dgram.RemoteInfo }[] = []
  constructor(public sock: dgram.Socket) {
    sock.on('message', (data, rinfo) => this.got.push({ data, rinfo }))
    sock.on('error', () => {})
  }
  get port() {
    return this.sock.address().port
  }
  send(data: string | Buffer, port: number, host: string) {
    return within(
      new Promise<void>((res, rej) => this.sock.send(data, port, host, (e) => (e ? rej(e) : res()))),
      'udp send',
    )
  }
  waitCount(n: number, ms = 10000) {
    return waitUntil(() => this.got.length >= n, () => `${n} datagrams at the node peer (have ${this.got.length})`, ms)
  }
  close() {
    try {
      this.sock.close()
    } catch {}
  }
}

export async function udpPeer(type: 'udp4' | 'udp6' = 'udp4', host?: string): Promise<UdpPeer> {
  const sock = dgram.createSocket(type)
  const h = host ?? (type === 'udp4' ? '127.0.0.1' : '::1')
  await within(new Promise<void>((r) => sock.bind(0, h, r)), 'udp bind')
  return new UdpPeer(sock)
}

/**
 * An adoptablePair adopted into `reactor` with a RecFactory of `P`; the caller's fd is closed at
 * once, so the reactor's duplicate is the only reference (`inode` names it in /proc/net). The
 * pair's cleanup goes into `cleanups`.
 */
export async function adoptedConnection(
  reactor: Reactor,
  kind: PairKind,
  cleanups: (() => void)[],
  P: typeof Rec = Rec,
  peerOpts: { allowHalfOpen?: boolean } = {},
): Promise<{ p: any; peer: Peer; serverPort?: number | undefined; inode: number }> {
  const x = await adoptablePair(kind, peerOpts)
  cleanups.push(x.cleanup)
  const p = reactor.adoptStreamConnection(x.fd, x.family, new RecFactory(P))
  const inode = socketInode(x.fd) // names the reactor's duplicate too, after the close
  closeFd(x.fd)
  return { p, peer: x.peer, serverPort: x.serverPort, inode }
}
