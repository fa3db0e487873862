// `sockets`: making and inspecting raw descriptors, which Node cannot do itself. All synchronous; every
// failure is an Error with `code` (syscall errors also have `errno`). The caller owns every fd returned.
import { decodeRecord, type Address } from './address'
import { SocketType } from './constants'
import { fromNativeError, invalidArgType, outOfRange } from './errors'
import { binding } from './native'

export interface ListenTcpOptions {
  /** An IP literal to bind, e.g. '127.0.0.1', '::', '::1'. */
  host: string
  /** 0 (the default) lets the kernel choose. */
  port?: number
  backlog?: number
  /** SO_REUSEPORT (default false). */
  reusePort?: boolean
  /** IPV6_V6ONLY for an IPv6 host; left as the system default when omitted. */
  ipv6Only?: boolean
}

export interface BindUdpOptions {
  host: string
  port?: number
  reusePort?: boolean
  /** UDP_GRO (default false): see `setUdpGro`. */
  gro?: boolean
}

export interface SocketInfo {
  /** AddressFamily number. */
  family: number
  /** SocketType number (SO_TYPE). */
  type: number
  /** SO_ACCEPTCONN. */
  listening: boolean
  /** O_NONBLOCK. */
  nonBlocking: boolean
  local: Address | null
  peer: Address | null
}

const DEFAULT_BACKLOG = 511

export const sockets = Object.freeze({
  /** A bound, listening TCP socket. */
  listenTcp(options: ListenTcpOptions): number {
    if (options === null || typeof options !== 'object') throw invalidArgType('listenTcp: options must be an object')
    const { host, port = 0, backlog = DEFAULT_BACKLOG, reusePort = false, ipv6Only } = options
    checkHost(host, 'listenTcp')
    checkPort(port, 'listenTcp')
    checkBacklog(backlog, 'listenTcp')
    checkBoolean(reusePort, 'listenTcp', 'reusePort')
    if (ipv6Only !== undefined) checkBoolean(ipv6Only, 'listenTcp', 'ipv6Only')
    return native(() => binding.sockets.listenTcp(host, port, backlog, reusePort, ipv6Only ?? null))
  },

  /** A bound UDP socket. */
  bindUdp(options: BindUdpOptions): number {
    if (options === null || typeof options !== 'object') throw invalidArgType('bindUdp: options must be an object')
    const { host, port = 0, reusePort = false, gro = false } = options
    checkHost(host, 'bindUdp')
    checkPort(port, 'bindUdp')
    checkBoolean(reusePort, 'bindUdp', 'reusePort')
    checkBoolean(gro, 'bindUdp', 'gro')
    const fd = native(() => binding.sockets.bindUdp(host, port, reusePort))
    if (gro) {
      try {
        native(() => binding.sockets.setUdpGro(fd, true))
      } catch (err) {
        binding.sockets.close(fd)
        throw err
      }
    }
    return fd
  },

  /**
   * Turns UDP_GRO on (or off) for a UDP socket: the kernel may then hand a reader several datagrams
   * of one flow as one buffer. A port adopted with it on cuts such buffers back into datagrams (so
   * its protocol sees no difference, only fewer syscalls); anyone else reading the same socket gets
   * them coalesced. Turn it on before adopting. Fails with `ENOPROTOOPT` on a socket that is not
   * UDP or a kernel without GRO (Linux < 5.0).
   */
  setUdpGro(fd: number, on: boolean): void {
    checkFd(fd, 'setUdpGro')
    checkBoolean(on, 'setUdpGro', 'on')
    native(() => binding.sockets.setUdpGro(fd, on))
  },

  /** A bound, listening UNIX stream socket at `path` (abstract names start with "\0"). */
  listenUnix(path: string, backlog: number = DEFAULT_BACKLOG): number {
    if (typeof path !== 'string' || path === '') throw invalidArgType('listenUnix: path must be a non-empty string')
    checkBacklog(backlog, 'listenUnix')
    return native(() => binding.sockets.listenUnix(path, backlog))
  },

  /** A TCP socket connected with a blocking connect (for tests and tools). */
  connectTcp(host: string, port: number): number {
    checkHost(host, 'connectTcp')
    checkPort(port, 'connectTcp')
    return native(() => binding.sockets.connectTcp(host, port))
  },

  /** A connected pair of AF_UNIX SOCK_STREAM sockets. */
  socketPair(): [number, number] {
    const pair = native(() => binding.sockets.socketPair())
    return [pair[0], pair[1]]
  },

  close(fd: number): void {
    checkFd(fd, 'close')
    native(() => binding.sockets.close(fd))
  },

  /** What the kernel says about `fd`. */
  info(fd: number): SocketInfo {
    checkFd(fd, 'info')
    const info = native(() => binding.sockets.info(fd))
    const ipType = info.type === SocketType.DGRAM ? 'UDP' : 'TCP'
    return {
      family: info.family,
      type: info.type,
      listening: info.listening,
      nonBlocking: info.nonBlocking,
      local: decodeRecord(info.local, ipType),
      peer: decodeRecord(info.peer, ipType),
    }
  },
})

function native<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw fromNativeError(err)
  }
}

function checkFd(fd: unknown, method: string): void {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw invalidArgType(`${method}: fd must be a non-negative integer, not ${String(fd)}`)
  }
}

function checkHost(host: unknown, method: string): void {
  if (typeof host !== 'string') throw invalidArgType(`${method}: host must be a string, not ${typeof host}`)
}

function checkPort(port: unknown, method: string): void {
  if (typeof port !== 'number' || !Number.isInteger(port)) {
    throw invalidArgType(`${method}: port must be an integer, not ${String(port)}`)
  }
  if (port < 0 || port > 65535) throw outOfRange(`${method}: port must be in 0..65535, not ${port}`)
}

function checkBacklog(backlog: unknown, method: string): void {
  if (typeof backlog !== 'number' || !Number.isInteger(backlog)) {
    throw invalidArgType(`${method}: backlog must be an integer, not ${String(backlog)}`)
  }
  if (backlog < 0 || backlog > 0x7fffffff) throw outOfRange(`${method}: backlog must be in 0..2147483647`)
}

function checkBoolean(value: unknown, method: string, name: string): void {
  if (typeof value !== 'boolean') throw invalidArgType(`${method}: ${name} must be a boolean, not ${typeof value}`)
}
