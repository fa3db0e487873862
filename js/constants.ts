// The platform's numbers for families and socket types, as the core names them (crates/core wire:
// `family`, `socket_type`; exported by the binding). Node does not expose AF_* or SOCK_*.
import { binding } from './native'

/** Address families, as the adopt methods take them (Linux: UNIX 1, INET 2, INET6 10). */
export const AddressFamily: Readonly<{ UNIX: number; INET: number; INET6: number }> = Object.freeze({
  UNIX: binding.AF_UNIX,
  INET: binding.AF_INET,
  INET6: binding.AF_INET6,
})

/** Socket types (SO_TYPE), as `sockets.info()` and `UnsupportedSocketType.socketType` report them
 *  (Linux: STREAM 1, DGRAM 2, SEQPACKET 5). */
export const SocketType: Readonly<{ STREAM: number; DGRAM: number; SEQPACKET: number }> = Object.freeze({
  STREAM: binding.SOCK_STREAM,
  DGRAM: binding.SOCK_DGRAM,
  SEQPACKET: binding.SOCK_SEQPACKET,
})
