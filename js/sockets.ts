// `sockets` (described at its declaration below) and its options' types.
import { decodeRecord, type Address } from './address'
import { SocketType } from './constants'
import { callNative, callNativeAt } from './errors'
import { binding } from './native'
import type { SocketOptionName, SocketOptionValues } from './socket-option-names'
import { optionCall, socketOptionName, socketOptionValue } from './socket-options'
import { booleanArgument, bufferSizeArgument, checkFd, integerArgument, optionsArgument, portArgument, stringArgument, unixPathArgument } from './validate'

/** `sockets.listenTcp`'s options. */
export interface ListenTcpOptions {
  /** An IP literal to bind, e.g. '127.0.0.1', '::', '::1'. */
  host: string
  /** 0 (the default) lets the kernel choose. */
  port?: number | undefined
  /** The listen(2) backlog (default 511; the kernel caps it at net.core.somaxconn). */
  backlog?: number | undefined
  /** SO_REUSEPORT (default false). */
  reusePort?: boolean | undefined
  /** IPV6_V6ONLY for an IPv6 host; left as the system default when omitted. */
  ipv6Only?: boolean | undefined
  /** SO_RCVBUF in bytes, set before bind and listen (accepted connections inherit it); the
   *  system default when omitted. As `setOption(fd, 'SO_RCVBUF', n)`: 0..2^31-1, capped at
   *  `net.core.rmem_max`, read back doubled. */
  recvBufferSize?: number | undefined
  /** SO_SNDBUF in bytes, likewise (capped at `net.core.wmem_max`). */
  sendBufferSize?: number | undefined
}

/**
 * `listenUnix` options. The sizes are the listening socket's own: unlike TCP, Linux gives each
 * accepted UNIX connection the system's default buffers (set those with `transport.setOption`).
 */
export interface ListenUnixOptions {
  /** SO_RCVBUF in bytes, set before bind and listen (checked as `ListenTcpOptions.recvBufferSize`). */
  recvBufferSize?: number | undefined
  /** SO_SNDBUF in bytes, set before bind and listen. */
  sendBufferSize?: number | undefined
}

/** `sockets.bindUdp`'s options. */
export interface BindUdpOptions {
  /** An IP literal to bind, e.g. '127.0.0.1', '::', '::1'. */
  host: string
  /** 0 (the default) lets the kernel choose. */
  port?: number | undefined
  /** SO_REUSEPORT (default false). */
  reusePort?: boolean | undefined
  /** UDP_GRO (default false): see `setUdpGro`. */
  gro?: boolean | undefined
  /** SO_RCVBUF in bytes, set before the bind (1..2^31-1). Past net.core.rmem_max only with
   *  CAP_NET_ADMIN (SO_RCVBUFFORCE); the kernel doubles it for its bookkeeping. Read what it set
   *  with `bufferSizes(fd)`. A size the kernel refuses throws with its errno (the fd is closed). */
  recvBufferSize?: number | undefined
  /** SO_SNDBUF likewise. */
  sendBufferSize?: number | undefined
}

/** What `sockets.info` reports of a descriptor. */
export interface SocketInfo {
  /** AddressFamily number. */
  family: number
  /** SocketType number (SO_TYPE). */
  type: number
  /** SO_ACCEPTCONN. */
  listening: boolean
  /** O_NONBLOCK. */
  nonBlocking: boolean
  /** The bound address (getsockname), or null when it has none. */
  local: Address | null
  /** The connected peer's address (getpeername), or null when it is not connected. */
  peer: Address | null
}

/** `recvBufferSize` / `sendBufferSize` checked as SO_RCVBUF / SO_SNDBUF values (undefined: the default). */
function bufferSizes(options: { recvBufferSize?: unknown; sendBufferSize?: unknown }, what: string): [number | undefined, number | undefined] {
  const { recvBufferSize: recv, sendBufferSize: send } = options
  return [
    recv === undefined ? undefined : socketOptionValue('SO_RCVBUF', recv, `${what}: recvBufferSize`),
    send === undefined ? undefined : socketOptionValue('SO_SNDBUF', send, `${what}: sendBufferSize`),
  ]
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

/**
 * Making and inspecting raw socket descriptors, which Node cannot do itself. All synchronous; every
 * failure is an Error with `code` (syscall errors also have `errno` and `syscall`, and those of calls
 * that take an address or a path say it: `address`/`port` or `path`, and in the message). The
 * caller owns every fd returned.
 */
export const sockets = Object.freeze({
  /**
   * A bound, listening TCP socket. `recvBufferSize` / `sendBufferSize` are set before bind and
   * listen; a size the kernel refuses fails the call with its errno and leaves nothing open.
   */
  listenTcp(options: ListenTcpOptions): number {
    const { host, port = 0, backlog = DEFAULT_BACKLOG, reusePort = false, ipv6Only, recvBufferSize, sendBufferSize } = optionsArgument(options, 'listenTcp: options', { required: true })
    const ip = stringArgument(host, 'listenTcp: host')
    portArgument(port, 'listenTcp: port')
    integerArgument(backlog, 'listenTcp: backlog', 0, MAX_BACKLOG)
    booleanArgument(reusePort, 'listenTcp: reusePort')
    if (ipv6Only !== undefined) booleanArgument(ipv6Only, 'listenTcp: ipv6Only')
    const [recv, send] = bufferSizes({ recvBufferSize, sendBufferSize }, 'listenTcp')
    return callNativeAt({ address: ip, port }, () => binding.sockets.listenTcp(ip, port, backlog, reusePort, ipv6Only ?? null, recv, send))
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
    const fd = callNativeAt({ address: ip, port }, () => binding.sockets.bindUdp(ip, port, reusePort, recvBufferSize, sendBufferSize))
    if (gro) {
      try {
        callNativeAt({ fd }, () => binding.sockets.setUdpGro(fd, true))
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
    callNativeAt({ fd }, () => binding.sockets.setUdpGro(fd, on))
  },

  /**
   * A bound, listening UNIX stream socket at `path` (abstract names start with "\0").
   * `options.recvBufferSize` / `sendBufferSize` are set before bind and listen; a size the kernel
   * refuses fails the call with its errno, before anything is created at `path`.
   */
  listenUnix(path: string, backlog: number = DEFAULT_BACKLOG, options?: ListenUnixOptions): number {
    unixPathArgument(path, 'listenUnix: path')
    integerArgument(backlog, 'listenUnix: backlog', 0, MAX_BACKLOG)
    const [recv, send] = bufferSizes(optionsArgument(options, 'listenUnix: options'), 'listenUnix')
    return callNativeAt({ path }, () => binding.sockets.listenUnix(path, backlog, recv, send))
  },

  /** A TCP socket connected with a blocking connect (for tests and tools). */
  connectTcp(host: string, port: number): number {
    stringArgument(host, 'connectTcp: host')
    portArgument(port, 'connectTcp: port')
    return callNativeAt({ address: host, port }, () => binding.sockets.connectTcp(host, port))
  },

  /** A connected pair of AF_UNIX SOCK_STREAM sockets. */
  socketPair(): [number, number] {
    const pair = callNative(() => binding.sockets.socketPair())
    return [pair[0], pair[1]]
  },

  /** Closes a descriptor (close(2)); EBADF when it is not open. */
  close(fd: number): void {
    checkFd(fd, 'close: fd')
    callNativeAt({ fd }, () => binding.sockets.close(fd))
  },

  /**
   * Sets socket option `name` (see `SocketOption` and docs/adopting.md, "Socket options") on `fd`, a
   * socket the caller holds. The value is checked by the option's kind first: a boolean, an
   * integer in the option's range, or an ASCII name (TypeError / RangeError, nothing set). An
   * unknown name is a TypeError with code 'ERR_INVALID_ARG_VALUE' listing the known ones. Then the
   * kernel decides: an option that does not apply to this socket gives its errno ('ENOPROTOOPT',
   * 'ENOTSUP' (EOPNOTSUPP) or 'EINVAL'), a privilege the process lacks 'EPERM'; `fd` not open
   * 'EBADF', not a socket 'ENOTSOCK'. Nothing is silently ignored.
   */
  setOption<N extends SocketOptionName>(fd: number, name: N, value: SocketOptionValues[N]): void {
    checkFd(fd, 'setOption: fd')
    const option = socketOptionName(name, 'setOption')
    const checked = socketOptionValue(option, value, `setOption: ${option}`)
    optionCall(option, () => binding.sockets.setOption(fd, option, checked), { fd })
  },

  /**
   * What the kernel reports for socket option `name` of `fd`: a boolean, a number or a string by
   * the option's kind. Values are the kernel's, not what was set: SO_RCVBUF / SO_SNDBUF doubled
   * (Linux keeps twice the size asked for), TCP_DEFER_ACCEPT rounded up to its retransmission
   * schedule, TCP_FASTOPEN capped at somaxconn, SO_BINDTODEVICE '' when unbound. Errors as for
   * `setOption`.
   */
  getOption<N extends SocketOptionName>(fd: number, name: N): SocketOptionValues[N] {
    checkFd(fd, 'getOption: fd')
    const option = socketOptionName(name, 'getOption')
    return optionCall(option, () => binding.sockets.getOption(fd, option), { fd }) as SocketOptionValues[N]
  },

  /** SO_RCVBUF and SO_SNDBUF of `fd`, as the kernel reports them (see `BufferSizes`). */
  bufferSizes(fd: number): BufferSizes {
    checkFd(fd, 'bufferSizes: fd')
    return callNativeAt({ fd }, () => binding.sockets.bufferSizes(fd))
  },

  /** What the kernel says about `fd`. */
  info(fd: number): SocketInfo {
    checkFd(fd, 'info: fd')
    const info = callNativeAt({ fd }, () => binding.sockets.info(fd))
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
