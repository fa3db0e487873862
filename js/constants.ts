// The platform's numbers for families and socket types, as the core names them (crates/core wire:
// `family`, `socket_type`; exported by the binding). Node does not expose AF_* or SOCK_*. These two
// objects are also the one table of their names in messages (`familyName`, `socketTypeName`).
import { binding } from './native'

/**
 * Address families, as the adopt methods take them. The values are the binding's; their types are
 * Linux's numbers (the only platform the package builds for), so that `AddressFamily.INET` and
 * `AddressFamily.INET6` are told apart by the compiler (`__test__/types` checks that the two agree).
 *
 * @enum
 */
export const AddressFamily: Readonly<{
  /** AF_UNIX: UNIX domain sockets. */
  UNIX: 1
  /** AF_INET: IPv4. */
  INET: 2
  /** AF_INET6: IPv6. */
  INET6: 10
}> = Object.freeze({
  UNIX: binding.AF_UNIX as 1,
  INET: binding.AF_INET as 2,
  INET6: binding.AF_INET6 as 10,
})

/** One of `AddressFamily`'s values. */
export type AddressFamily = (typeof AddressFamily)[keyof typeof AddressFamily]

/** The families a datagram socket can have (`adoptDatagramPort`, `listenDatagramProxy`). */
export type DatagramFamily = typeof AddressFamily.INET | typeof AddressFamily.INET6

/**
 * The type of a family argument `F`: one of `Allowed`, or a `number` known only at run time (e.g.
 * `sockets.info(fd).family`), which the method checks then (UnsupportedAddressFamily). A literal
 * outside `Allowed` (`adoptStreamPort(fd, 99, f)`) is a type error.
 */
export type FamilyArgument<F extends number, Allowed extends AddressFamily = AddressFamily> = number extends F
  ? number
  : F extends Allowed
    ? F
    : Allowed

/** Socket types (SO_TYPE), as `sockets.info()` and `UnsupportedSocketType.socketType` report them
 *  (Linux: STREAM 1, DGRAM 2, RAW 3, SEQPACKET 5). */
export const SocketType: Readonly<{
  /** SOCK_STREAM: TCP, or a UNIX stream socket. */
  STREAM: number
  /** SOCK_DGRAM: UDP, or a UNIX datagram socket. */
  DGRAM: number
  /** SOCK_SEQPACKET: a UNIX sequenced-packet socket (the adopt methods refuse it; `sockets.info()` reports it). */
  SEQPACKET: number
  /** SOCK_RAW: a raw IP socket (the adopt methods refuse it; `sockets.info()` reports it). */
  RAW: number
}> = Object.freeze({
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
