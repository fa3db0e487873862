// The names of the socket options `sockets.setOption` / `transport.setOption` take, and the type of
// each one's value. A leaf module (it imports nothing), so that the interfaces can name them. The
// core owns the set, the kinds and the ranges (crates/core/src/sys/sockopt.rs); the tests check
// that this list is exactly the core's.

/**
 * The options `setOption` / `getOption` know, by their C names (for autocompletion; the strings
 * themselves work as well). Frozen.
 */
export const SocketOption = Object.freeze({
  SO_RCVBUF: 'SO_RCVBUF',
  SO_SNDBUF: 'SO_SNDBUF',
  SO_KEEPALIVE: 'SO_KEEPALIVE',
  SO_REUSEPORT: 'SO_REUSEPORT',
  SO_MARK: 'SO_MARK',
  SO_BINDTODEVICE: 'SO_BINDTODEVICE',
  TCP_NODELAY: 'TCP_NODELAY',
  TCP_KEEPIDLE: 'TCP_KEEPIDLE',
  TCP_KEEPINTVL: 'TCP_KEEPINTVL',
  TCP_KEEPCNT: 'TCP_KEEPCNT',
  TCP_USER_TIMEOUT: 'TCP_USER_TIMEOUT',
  TCP_DEFER_ACCEPT: 'TCP_DEFER_ACCEPT',
  TCP_FASTOPEN: 'TCP_FASTOPEN',
  TCP_CONGESTION: 'TCP_CONGESTION',
  IP_TOS: 'IP_TOS',
  IP_TTL: 'IP_TTL',
  IP_FREEBIND: 'IP_FREEBIND',
  IP_TRANSPARENT: 'IP_TRANSPARENT',
  IPV6_V6ONLY: 'IPV6_V6ONLY',
} as const)

/** A name of `SocketOption`. */
export type SocketOptionName = keyof typeof SocketOption

/** The value each option takes and reads back. */
export interface SocketOptionValues {
  /** Receive buffer in bytes, 0..2^31-1. The kernel caps it at `net.core.rmem_max`, raises it to
   *  its minimum, and doubles it (room for its bookkeeping): `getOption` reports the doubled value. */
  SO_RCVBUF: number
  /** Send buffer in bytes, 0..2^31-1 (capped at `net.core.wmem_max`, doubled as for SO_RCVBUF). */
  SO_SNDBUF: number
  SO_KEEPALIVE: boolean
  SO_REUSEPORT: boolean
  /** Packet mark, 0..2^31-1. Setting it needs CAP_NET_ADMIN (or CAP_NET_RAW): EPERM otherwise. */
  SO_MARK: number
  /** Interface name (at most 15 ASCII bytes); '' removes the binding. Changing an existing binding
   *  needs CAP_NET_RAW. */
  SO_BINDTODEVICE: string
  TCP_NODELAY: boolean
  /** Seconds idle before the first keepalive probe, 1..32767. */
  TCP_KEEPIDLE: number
  /** Seconds between keepalive probes, 1..32767. */
  TCP_KEEPINTVL: number
  /** Unanswered probes before the connection is dropped, 1..127. */
  TCP_KEEPCNT: number
  /** Milliseconds sent data may stay unacknowledged, 0..2^31-1 (0: the system's default). */
  TCP_USER_TIMEOUT: number
  /** Seconds a listener waits for the first data, 0..2^31-1; read back rounded up to the SYN-ACK
   *  retransmission schedule (5 reads as 7). */
  TCP_DEFER_ACCEPT: number
  /** Fast Open queue length of a listener, 0..2^31-1 (read back capped at `net.core.somaxconn`). */
  TCP_FASTOPEN: number
  /** Congestion control algorithm ('reno', 'cubic', 'bbr', ...; at most 15 ASCII bytes). Unknown → ENOENT;
   *  one not in `net.ipv4.tcp_allowed_congestion_control` needs CAP_NET_ADMIN (EPERM). */
  TCP_CONGESTION: string
  /** Type of service byte, 0..255. On TCP the kernel keeps the two ECN bits for itself. */
  IP_TOS: number
  /** Unicast time to live, 1..255. */
  IP_TTL: number
  IP_FREEBIND: boolean
  /** Needs CAP_NET_ADMIN (or CAP_NET_RAW): EPERM otherwise. */
  IP_TRANSPARENT: boolean
  /** Settable only before bind (EINVAL after); an IPv4 socket answers ENOPROTOOPT. */
  IPV6_V6ONLY: boolean
}

/** The names, in the order of `SocketOption`. */
export const SOCKET_OPTION_NAMES: readonly SocketOptionName[] = Object.freeze(Object.keys(SocketOption) as SocketOptionName[])
