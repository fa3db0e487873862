// `sockets`: making and inspecting raw descriptors, which Node cannot do itself. All synchronous; every
// failure is an Error with `code` (syscall errors also have `errno`). The caller owns every fd returned.
import { decodeRecord, type Address } from './address'
import { SocketType } from './constants'
import { callNative } from './errors'
import { binding } from './native'
import { booleanArgument, bufferSizeArgument, checkFd, integerArgument, optionsArgument, portArgument, stringArgument, unixPathArgument } from './validate'

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
  /** SO_RCVBUF in bytes, set before the bind (1..2^31-1). Past net.core.rmem_max only with
   *  CAP_NET_ADMIN (SO_RCVBUFFORCE); the kernel doubles it for its bookkeeping. Read what it set
   *  with `bufferSizes(fd)`. A size the kernel refuses throws with its errno (the fd is closed). */
  recvBufferSize?: number
  /** SO_SNDBUF likewise. */
  sendBufferSize?: number
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

/** A socket's kernel buffers as the kernel reports them (bytes, its bookkeeping included: Linux
 *  doubles what it is asked for, after capping it at net.core.rmem_max / wmem_max unless the
 *  process has CAP_NET_ADMIN). */
export interface BufferSizes {
  /** SO_RCVBUF. */
  recvBufferSize: number
  /** SO_SNDBUF. */
  sendBufferSize: number
}

const DEFAULT_BACKLOG = 511
/** The kernel caps a backlog at somaxconn; this is only what fits its int. */
const MAX_BACKLOG = 0x7fffffff

export const sockets = Object.freeze({
  /** A bound, listening TCP socket. */
  listenTcp(options: ListenTcpOptions): number {
    const { host, port = 0, backlog = DEFAULT_BACKLOG, reusePort = false, ipv6Only } = optionsArgument(options, 'listenTcp: options', { required: true })
    const ip = stringArgument(host, 'listenTcp: host')
    portArgument(port, 'listenTcp: port')
    integerArgument(backlog, 'listenTcp: backlog', 0, MAX_BACKLOG)
    booleanArgument(reusePort, 'listenTcp: reusePort')
    if (ipv6Only !== undefined) booleanArgument(ipv6Only, 'listenTcp: ipv6Only')
    return callNative(() => binding.sockets.listenTcp(ip, port, backlog, reusePort, ipv6Only ?? null))
  },

  /** A bound UDP socket. */
  bindUdp(options: BindUdpOptions): number {
    const { host, port = 0, reusePort = false, gro = false, recvBufferSize, sendBufferSize } = optionsArgument(options, 'bindUdp: options', { required: true })
    const ip = stringArgument(host, 'bindUdp: host')
    portArgument(port, 'bindUdp: port')
    booleanArgument(reusePort, 'bindUdp: reusePort')
    booleanArgument(gro, 'bindUdp: gro')
    if (recvBufferSize !== undefined) bufferSizeArgument(recvBufferSize, 'bindUdp: recvBufferSize')
    if (sendBufferSize !== undefined) bufferSizeArgument(sendBufferSize, 'bindUdp: sendBufferSize')
    const fd = callNative(() => binding.sockets.bindUdp(ip, port, reusePort, recvBufferSize, sendBufferSize))
    if (gro) {
      try {
        callNative(() => binding.sockets.setUdpGro(fd, true))
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
    checkFd(fd, 'setUdpGro: fd')
    booleanArgument(on, 'setUdpGro: on')
    callNative(() => binding.sockets.setUdpGro(fd, on))
  },

  /** A bound, listening UNIX stream socket at `path` (abstract names start with "\0"). */
  listenUnix(path: string, backlog: number = DEFAULT_BACKLOG): number {
    unixPathArgument(path, 'listenUnix: path')
    integerArgument(backlog, 'listenUnix: backlog', 0, MAX_BACKLOG)
    return callNative(() => binding.sockets.listenUnix(path, backlog))
  },

  /** A TCP socket connected with a blocking connect (for tests and tools). */
  connectTcp(host: string, port: number): number {
    stringArgument(host, 'connectTcp: host')
    portArgument(port, 'connectTcp: port')
    return callNative(() => binding.sockets.connectTcp(host, port))
  },

  /** A connected pair of AF_UNIX SOCK_STREAM sockets. */
  socketPair(): [number, number] {
    const pair = callNative(() => binding.sockets.socketPair())
    return [pair[0], pair[1]]
  },

  close(fd: number): void {
    checkFd(fd, 'close: fd')
    callNative(() => binding.sockets.close(fd))
  },

  /** SO_RCVBUF and SO_SNDBUF of `fd`, as the kernel reports them (see `BufferSizes`). */
  bufferSizes(fd: number): BufferSizes {
    checkFd(fd, 'bufferSizes: fd')
    return callNative(() => binding.sockets.bufferSizes(fd))
  },

  /** What the kernel says about `fd`. */
  info(fd: number): SocketInfo {
    checkFd(fd, 'info: fd')
    const info = callNative(() => binding.sockets.info(fd))
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
