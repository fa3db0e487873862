// The platform's numbers for families and socket types. Node does not expose AF_* or SOCK_*, and the
// package is Linux-only (package.json "os"), so these are Linux's values.

/** Address families, as the adopt methods take them. */
export const AddressFamily = Object.freeze({
  UNIX: 1,
  INET: 2,
  INET6: 10,
} as const)

/** Socket types (SO_TYPE), as `sockets.info()` and `UnsupportedSocketType.socketType` report them. */
export const SocketType = Object.freeze({
  STREAM: 1,
  DGRAM: 2,
  SEQPACKET: 5,
} as const)
