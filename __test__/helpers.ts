// Shared helpers for the ava suite. Only the public API of 'reactor-socket' is used.
import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import * as dgram from 'node:dgram'
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { Protocol, ServerFactory, DatagramProtocol, sockets, AddressFamily } from 'reactor-socket'

// ava runs every test file with the project directory as its working directory
export const HERE = path.join(process.cwd(), '__test__')
export const FIXTURES = path.join(HERE, 'fixtures')
export const fixture = (name: string) => path.join(FIXTURES, name)

/** Both ways the reactor can run; every behaviour in the SPEC holds in both. */
export const MODES = [
  { name: 'thread', thread: true },
  { name: 'no-thread', thread: false },
] as const

// ---------------------------------------------------------------------------------------------
// Bounded waiting

export function defer<T = void>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Resolves with p's value, or rejects when `ms` pass first (the test then fails with `what`). */
export function within<T>(p: Promise<T>, what: string, ms = 10000): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Polls `cond` until it holds (bounded). */
export async function waitUntil(cond: () => boolean, what: string | (() => string), ms = 10000, step = 5): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)
    await new Promise((r) => setTimeout(r, step))
  }
}

/** For absence checks only ("nothing happens for a while"): a short fixed pause. */
export const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Drains the microtask queue a number of times without leaving the current macrotask. */
export async function microtasks(n = 50) {
  for (let i = 0; i < n; i++) await null
}

/**
 * Stays within the current macrotask but lets every microtask and process.nextTick queued so far
 * run: a promise that settles "no earlier than the next turn of the event loop" is still pending.
 */
export async function drainCurrentTurn() {
  for (let i = 0; i < 5; i++) {
    await microtasks(20)
    await new Promise<void>((r) => process.nextTick(r))
  }
  await microtasks(20)
}

/** Resolves on the next turn of the event loop (after I/O callbacks). */
export const nextTurn = () => new Promise<void>((r) => setImmediate(r))

// ---------------------------------------------------------------------------------------------
// Descriptors and threads of this process

/**
 * The fds of this process and what they point at. Regular files and directories other than
 * /dev/null are left out: the TypeScript loader (tsx) opens and closes cache files on its own
 * thread at any moment, and the reactor never opens a path (only sockets, epoll, eventfd, and
 * perhaps a reserve /dev/null).
 */
export function fdTable(): Map<number, string> {
  const m = new Map<number, string>()
  for (const n of fs.readdirSync('/proc/self/fd')) {
    try {
      const link = fs.readlinkSync(`/proc/self/fd/${n}`)
      if (link.startsWith('/') && link !== '/dev/null') continue
      m.set(Number(n), link)
    } catch {
      // the directory's own fd, closed by now
    }
  }
  return m
}

export function fdList(): string[] {
  return [...fdTable().entries()].sort((a, b) => a[0] - b[0]).map(([n, l]) => `${n} -> ${l}`)
}

export const taskCount = () => fs.readdirSync('/proc/self/task').length

/** The fds of this process that refer to the same open socket (by inode) as `fd`. */
export function sameSocketFds(fd: number): number[] {
  const link = fs.readlinkSync(`/proc/self/fd/${fd}`)
  return [...fdTable().entries()].filter(([, l]) => l === link).map(([n]) => n)
}

/** Like sameSocketFds but from a link read earlier (works after the caller's fd was closed). */
export function fdsWithLink(link: string): number[] {
  return [...fdTable().entries()].filter(([, l]) => l === link).map(([n]) => n)
}
export const linkOf = (fd: number) => fs.readlinkSync(`/proc/self/fd/${fd}`)

export function isCloexec(fd: number): boolean {
  const txt = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
  const m = /flags:\s*([0-7]+)/.exec(txt)
  if (!m) throw new Error('no flags in fdinfo')
  return (parseInt(m[1], 8) & 0o2000000) !== 0
}

/** Starts libuv's thread pool so that later thread counts are stable. */
export async function warmThreadPool() {
  await Promise.all([1, 2, 3, 4, 5].map(() => fs.promises.stat('/')))
}

// ---------------------------------------------------------------------------------------------
// Raw fds made with the package's helpers, closed at the end

const tracked = new Set<number>()
export function track(fd: number): number {
  tracked.add(fd)
  return fd
}
/** Closes a tracked fd now (and forgets it, so that the number is never closed twice). */
export function closeFd(fd: number) {
  tracked.delete(fd)
  sockets.close(fd)
}
/** Forget an fd that something else (e.g. a net.Socket) took ownership of. */
export const untrack = (fd: number) => tracked.delete(fd)
export function closeTracked() {
  for (const fd of tracked) {
    try {
      sockets.close(fd)
    } catch {
      // already gone
    }
  }
  tracked.clear()
}

export const listenTcp4 = (opts: Record<string, unknown> = {}) =>
  track(sockets.listenTcp({ host: '127.0.0.1', port: 0, ...opts }))
export const listenTcp6 = (opts: Record<string, unknown> = {}) =>
  track(sockets.listenTcp({ host: '::1', port: 0, ...opts }))
export const bindUdp4 = (host = '127.0.0.1') => track(sockets.bindUdp({ host, port: 0 }))
export const bindUdp6 = (host = '::1') => track(sockets.bindUdp({ host, port: 0 }))
export const portOf = (fd: number): number => (sockets.info(fd).local as any).port

let unixCounter = 0
export function tmpSockPath(tag = 's'): string {
  return path.join(os.tmpdir(), `rs-${process.pid}-${tag}-${++unixCounter}.sock`)
}
export function listenUnixFd(tag = 'u'): { fd: number; path: string } {
  const p = tmpSockPath(tag)
  try {
    fs.unlinkSync(p)
  } catch {}
  return { fd: track(sockets.listenUnix(p)), path: p }
}

/** A closed fd number (open then close one). */
export function closedFd(): number {
  const fd = fs.openSync('/dev/null', 'r')
  fs.closeSync(fd)
  return fd
}

/** A TCP fd that is connected (client side) but not listening: needs a listener to connect to. */
export function connectedTcp4(): { client: number; listener: number } {
  const listener = listenTcp4()
  const client = track(sockets.connectTcp('127.0.0.1', portOf(listener)))
  return { client, listener }
}

// ---------------------------------------------------------------------------------------------
// Node peers

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
export const familyOf = (k: PairKind) =>
  k === 'v4' ? AddressFamily.INET : k === 'v6' ? AddressFamily.INET6 : AddressFamily.UNIX

/**
 * A connected stream fd for adoptStreamConnection and a Node socket at the other end.
 * TCP: a Node server accepts the connection that sockets.connectTcp makes. UNIX: socketPair.
 */
export async function adoptablePair(
  kind: PairKind,
  peerOpts: { allowHalfOpen?: boolean } = {},
): Promise<{ fd: number; peer: Peer; family: number; serverPort?: number; cleanup: () => void }> {
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

// ---------------------------------------------------------------------------------------------
// Recording protocols and factories

/** Records everything that happens to a connection. */
export class Rec extends Protocol {
  log: string[] = []
  chunks: Buffer[] = []
  lostReasons: any[] = []
  madeCount = 0
  echo = false
  get t(): any {
    return (this as any).transport
  }
  connectionMade() {
    this.madeCount++
    this.log.push('made')
  }
  dataReceived(d: Buffer) {
    this.log.push('data')
    this.chunks.push(d)
    if (this.echo) this.t.write(d)
  }
  connectionLost(reason: any) {
    this.log.push('lost')
    this.lostReasons.push(reason)
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks)
  }
  get text(): string {
    return this.data.toString()
  }
  get reason(): any {
    return this.lostReasons[0]
  }
  waitBytes(n: number, ms = 10000) {
    return waitUntil(() => this.data.length >= n, () => `${n} bytes at the protocol (have ${this.data.length})`, ms)
  }
  waitText(s: string, ms = 10000) {
    return waitUntil(() => this.text.includes(s), `protocol text ${JSON.stringify(s)}`, ms)
  }
  async waitLost(ms = 10000): Promise<any> {
    await waitUntil(() => this.lostReasons.length > 0, 'connectionLost', ms)
    return this.lostReasons[0]
  }
}

export class EchoRec extends Rec {
  echo = true
}

/** A ServerFactory that records what it built and its start/stop calls. */
export class RecFactory extends ServerFactory {
  built: any[] = []
  addrs: any[] = []
  starts = 0
  stops = 0
  doStarts = 0
  doStops = 0
  decline = false
  constructor(proto: any = EchoRec) {
    super()
    ;(this as any).protocol = proto
  }
  buildProtocol(addr: any): any {
    this.addrs.push(addr)
    if (this.decline) return null
    const p = super.buildProtocol(addr)
    this.built.push(p)
    return p
  }
  doStart() {
    this.doStarts++
    return super.doStart()
  }
  doStop() {
    this.doStops++
    return super.doStop()
  }
  startFactory() {
    this.starts++
  }
  stopFactory() {
    this.stops++
  }
  waitBuilt(n = 1, ms = 10000) {
    return waitUntil(() => this.built.length >= n, `${n} protocols built`, ms)
  }
}

/** Records datagrams and the protocol's start/stop. */
export class DgramRec extends DatagramProtocol {
  got: { data: Buffer; addr: any }[] = []
  starts = 0
  stops = 0
  refused = 0
  log: string[] = []
  transportAtStart: any
  get t(): any {
    return (this as any).transport
  }
  startProtocol() {
    this.starts++
    this.log.push('start')
    this.transportAtStart = (this as any).transport
  }
  stopProtocol() {
    this.stops++
    this.log.push('stop')
  }
  datagramReceived(data: Buffer, addr: any) {
    this.log.push('dgram')
    this.got.push({ data, addr })
  }
  connectionRefused() {
    this.refused++
    this.log.push('refused')
  }
  waitCount(n: number, ms = 10000) {
    return waitUntil(() => this.got.length >= n, () => `${n} datagrams (have ${this.got.length})`, ms)
  }
}

// ---------------------------------------------------------------------------------------------
// UDP peers

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

// ---------------------------------------------------------------------------------------------
// Child processes

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export class Child {
  stdout = ''
  stderr = ''
  readonly exited: Promise<ChildResult>
  constructor(public proc: ChildProcess) {
    proc.stdout?.setEncoding('utf8')
    proc.stdout?.on('data', (d: string) => (this.stdout += d))
    proc.stderr?.setEncoding('utf8')
    proc.stderr?.on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) =>
      proc.once('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr })),
    )
  }
  get alive() {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }
  /** Waits for a line on stdout that starts with `prefix`; returns the rest of that line. */
  async line(prefix: string, ms = 10000): Promise<string> {
    let found: string | undefined
    await waitUntil(
      () => {
        for (const l of this.stdout.split('\n')) {
          if (l.startsWith(prefix)) {
            found = l.slice(prefix.length).trim()
            return true
          }
        }
        if (!this.alive) throw new Error(`child exited before printing ${prefix}: ${this.stdout}\n${this.stderr}`)
        return false
      },
      `child line ${prefix}`,
      ms,
    )
    return found!
  }
  send(s: string) {
    this.proc.stdin?.write(s)
  }
  async wait(ms = 15000): Promise<ChildResult> {
    try {
      return await within(this.exited, 'child exit', ms)
    } catch (e) {
      this.kill()
      throw new Error(`${(e as Error).message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`)
    }
  }
  kill() {
    if (this.alive) this.proc.kill('SIGKILL')
  }
}

export function runChild(file: string, args: string[] = [], opts: SpawnOptions = {}): Child {
  const proc = spawn(process.execPath, [file, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...opts,
  })
  return new Child(proc)
}

const children = new Set<Child>()
export function child(file: string, args: string[] = [], opts: SpawnOptions = {}): Child {
  const c = runChild(file, args, opts)
  children.add(c)
  return c
}
export function killChildren() {
  for (const c of children) c.kill()
}

export function hasCommand(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK)
      return true
    } catch {}
  }
  return false
}

/** Limits how many test bodies run at once (child-process tests: avoid starving 2 cores). */
export function limiter(n: number) {
  let active = 0
  const queue: (() => void)[] = []
  return async function run<T>(fn: () => Promise<T>): Promise<T> {
    if (active >= n) await new Promise<void>((r) => queue.push(r))
    active++
    try {
      return await fn()
    } finally {
      active--
      queue.shift()?.()
    }
  }
}

/** SOL_SOCKET options of a socket, read by python3 through an inherited copy (null without python3). */
export async function socketOptions(fd: number): Promise<{ reuseaddr: number; reuseport: number; rcvbuf: number } | null> {
  if (!hasCommand('python3')) return null
  const code = [
    'import socket, json',
    's = socket.socket(fileno=3)',
    'print(json.dumps({"reuseaddr": s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),',
    '  "reuseport": s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),',
    '  "rcvbuf": s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}))',
    's.detach()',
  ].join('\n')
  return JSON.parse(await python(code, fd))
}

/** Runs python3 -c code with `fd` as its fd 3 (asynchronously: the event loop keeps running). */
async function python(code: string, fd: number): Promise<string> {
  const c = new Child(spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'pipe', fd] }))
  const res = await c.wait(20000)
  if (res.code !== 0) throw new Error(`python3 failed: ${res.stderr}`)
  return res.stdout
}

/** Pending SO_ERROR of a socket (read, and so cleared, by python3 through an inherited copy). */
export async function soError(fd: number): Promise<number | null> {
  if (!hasCommand('python3')) return null
  const code = 'import socket\ns = socket.socket(fileno=3)\nprint(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))\ns.detach()'
  return Number((await python(code, fd)).trim())
}

/** UDP may drop under load: send again every `every` ms until `cond` holds (bounded). */
export async function sendUntil(send: () => void, cond: () => boolean, what: string, ms = 10000, every = 100) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    send()
    const next = Date.now() + every
    while (!cond() && Date.now() < next) await new Promise((r) => setTimeout(r, 5))
  }
}

/** The backlog (Send-Q) that `ss` reports for a listening TCP port or UNIX path; null without ss. */
export async function listenBacklog(what: { port: number } | { path: string }): Promise<number | null> {
  if (!hasCommand('ss')) return null
  const args = 'port' in what ? ['-ltnH', `sport = :${what.port}`] : ['-lxH', `src ${what.path}`]
  const c = new Child(spawn('ss', args, { stdio: ['ignore', 'pipe', 'pipe'] }))
  const res = await c.wait(10000)
  const line = res.stdout.trim().split('\n')[0] ?? ''
  const cols = line.split(/\s+/)
  // TCP: State Recv-Q Send-Q ...; UNIX: Netid State Recv-Q Send-Q ...
  const n = Number('port' in what ? cols[2] : cols[3])
  return Number.isFinite(n) ? n : NaN
}

/**
 * The teardown most spec files share: after the file's tests, run the cleanups, close the
 * reactors, close the fds the helpers tracked. Returns the lists to register into.
 */
export function fileTeardown(): { reactors: { close(): Promise<void> }[]; cleanups: (() => void)[] } {
  const reactors: { close(): Promise<void> }[] = []
  const cleanups: (() => void)[] = []
  test.after.always(async () => {
    for (const c of cleanups) c()
    for (const r of reactors) await r.close()
    closeTracked()
  })
  return { reactors, cleanups }
}
