// The platform's numbers for families and socket types, as the core names them (crates/core wire:
// `family`, `socket_type`; exported by the binding). Node does not expose AF_* or SOCK_*. These two
// objects are also the one table of their names in messages (`familyName`, `socketTypeName`).
import { binding } from './native'

/** Address families, as the adopt methods take them (Linux: UNIX 1, INET 2, INET6 10). */
export const AddressFamily: Readonly<{ UNIX: number; INET: number; INET6: number }> = Object.freeze({
  UNIX: binding.AF_UNIX,
  INET: binding.AF_INET,
  INET6: binding.AF_INET6,
})

/** Socket types (SO_TYPE), as `sockets.info()` and `UnsupportedSocketType.socketType` report them
 *  (Linux: STREAM 1, DGRAM 2, RAW 3, SEQPACKET 5). */
export const SocketType: Readonly<{ STREAM: number; DGRAM: number; SEQPACKET: number; RAW: number }> = Object.freeze({
  STREAM: binding.SOCK_STREAM,
  DGRAM: binding.SOCK_DGRAM,
  SEQPACKET: binding.SOCK_SEQPACKET,
  RAW: binding.SOCK_RAW,
})

/** 'AF_INET' for AddressFamily.INET, and so on; the number itself for a family not named above. */
export function familyName(family: number): string {
  return nameIn(AddressFamily, 'AF_', family)
}

/** 'SOCK_DGRAM' for SocketType.DGRAM, and so on; the number itself for a type not named above. */
export function socketTypeName(type: number): string {
  return nameIn(SocketType, 'SOCK_', type)
}

function nameIn(table: Readonly<Record<string, number>>, prefix: string, value: number): string {
  for (const key in table) if (table[key] === value) return prefix + key
  return String(value)
}
