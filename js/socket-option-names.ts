// The names of the socket options `sockets.setOption` / `transport.setOption` take, and the type of
// each one's value. A leaf module (it imports nothing), so that the interfaces can name them. The
// core owns the set, the kinds and the ranges (crates/core/src/sys/sockopt.rs); the tests check
// that this list is exactly the core's.

/**
 * The options `setOption` / `getOption` know, by their C names (for autocompletion; the strings
 * themselves work as well). Frozen.
 */
export const SocketOption = Object.freeze({
  /** The receive buffer size. See {@link SocketOptionValues.SO_RCVBUF}. */
  SO_RCVBUF: 'SO_RCVBUF',
  /** The send buffer size. See {@link SocketOptionValues.SO_SNDBUF}. */
  SO_SNDBUF: 'SO_SNDBUF',
  /** TCP keepalive probes on or off. See {@link SocketOptionValues.SO_KEEPALIVE}. */
  SO_KEEPALIVE: 'SO_KEEPALIVE',
  /** Several sockets may bind the same address and port. See {@link SocketOptionValues.SO_REUSEPORT}. */
  SO_REUSEPORT: 'SO_REUSEPORT',
  /** The packet mark (firewall and routing rules). See {@link SocketOptionValues.SO_MARK}. */
  SO_MARK: 'SO_MARK',
  /** Binds the socket to one network interface. See {@link SocketOptionValues.SO_BINDTODEVICE}. */
  SO_BINDTODEVICE: 'SO_BINDTODEVICE',
  /** Nagle's algorithm off (small writes go out at once). See {@link SocketOptionValues.TCP_NODELAY}. */
  TCP_NODELAY: 'TCP_NODELAY',
  /** Idle time before the first keepalive probe. See {@link SocketOptionValues.TCP_KEEPIDLE}. */
  TCP_KEEPIDLE: 'TCP_KEEPIDLE',
  /** Time between keepalive probes. See {@link SocketOptionValues.TCP_KEEPINTVL}. */
  TCP_KEEPINTVL: 'TCP_KEEPINTVL',
  /** Unanswered keepalive probes before the connection is dropped. See {@link SocketOptionValues.TCP_KEEPCNT}. */
  TCP_KEEPCNT: 'TCP_KEEPCNT',
  /** How long sent data may stay unacknowledged. See {@link SocketOptionValues.TCP_USER_TIMEOUT}. */
  TCP_USER_TIMEOUT: 'TCP_USER_TIMEOUT',
  /** A listener wakes only once a connection has data. See {@link SocketOptionValues.TCP_DEFER_ACCEPT}. */
  TCP_DEFER_ACCEPT: 'TCP_DEFER_ACCEPT',
  /** TCP Fast Open on a listener. See {@link SocketOptionValues.TCP_FASTOPEN}. */
  TCP_FASTOPEN: 'TCP_FASTOPEN',
  /** The congestion control algorithm. See {@link SocketOptionValues.TCP_CONGESTION}. */
  TCP_CONGESTION: 'TCP_CONGESTION',
  /** The type-of-service byte. See {@link SocketOptionValues.IP_TOS}. */
  IP_TOS: 'IP_TOS',
  /** The unicast time to live. See {@link SocketOptionValues.IP_TTL}. */
  IP_TTL: 'IP_TTL',
  /** Bind to an address that is not (yet) local. See {@link SocketOptionValues.IP_FREEBIND}. */
  IP_FREEBIND: 'IP_FREEBIND',
  /** Transparent proxying (TPROXY). See {@link SocketOptionValues.IP_TRANSPARENT}. */
  IP_TRANSPARENT: 'IP_TRANSPARENT',
  /** An IPv6 socket takes IPv6 only, not IPv4-mapped addresses. See {@link SocketOptionValues.IPV6_V6ONLY}. */
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
  /** TCP keepalive probes on an idle connection (their timing: TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT). */
  SO_KEEPALIVE: boolean
  /** Lets several sockets bind the same address and port (the kernel spreads connections or datagrams among them). Set before bind. */
  SO_REUSEPORT: boolean
  /** Packet mark, 0..2^31-1. Setting it needs CAP_NET_ADMIN (or CAP_NET_RAW): EPERM otherwise. */
  SO_MARK: number
  /** Interface name (at most 15 ASCII bytes); '' removes the binding. Changing an existing binding
   *  needs CAP_NET_RAW. */
  SO_BINDTODEVICE: string
  /** true: small writes go out at once (Nagle's algorithm off). */
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
  /** Lets the socket bind an address that is not (yet) assigned to an interface. */
  IP_FREEBIND: boolean
  /** Needs CAP_NET_ADMIN (or CAP_NET_RAW): EPERM otherwise. */
  IP_TRANSPARENT: boolean
  /** Settable only before bind (EINVAL after); an IPv4 socket answers ENOPROTOOPT. */
  IPV6_V6ONLY: boolean
}

/** The names, in the order of `SocketOption`. */
export const SOCKET_OPTION_NAMES: readonly SocketOptionName[] = Object.freeze(Object.keys(SocketOption) as SocketOptionName[])
