// Socket options by name: the one check of a name and a value against the core's table (each
// option's kind and range, crates/core/src/sys/sockopt.rs, read from the binding once), and the
// call that sets or reads one, shared by `sockets.setOption` and `StreamTransport#setOption`.
import { callNative, callNativeAt, type ErrorTarget } from './errors'
import { binding } from './native'
import { SOCKET_OPTION_NAMES, type SocketOptionName, type SocketOptionValues } from './socket-option-names'
import { asciiNameArgument, booleanArgument, integerArgument, nameArgument } from './validate'

type Spec = ReturnType<typeof binding.sockets.socketOptions>[number]

let specs: Map<string, Spec> | null = null

/** The core's entry for `name` (a name of SOCKET_OPTION_NAMES: the tests tie the two lists). */
function specOf(name: SocketOptionName): Spec {
  specs ??= new Map(binding.sockets.socketOptions().map((spec) => [spec.name, spec]))
  const spec = specs.get(name)
  if (spec === undefined) throw new Error(`reactor-socket: the native core does not know ${name}`)
  return spec
}

/** A socket option's name: a string (TypeError) among the known ones (TypeError ERR_INVALID_ARG_VALUE listing them). */
export function socketOptionName(value: unknown, what: string): SocketOptionName {
  return nameArgument(value, `${what}: name`, SOCKET_OPTION_NAMES)
}

/**
 * A value for option `name`, checked by the option's kind: a boolean (else TypeError); an integer
 * (else TypeError: 1.5, NaN, Infinity, a string) within the option's range (else RangeError: -1,
 * 2^32, 1e300); an ASCII name without NUL within the kernel's length (TypeError / RangeError).
 */
export function socketOptionValue<N extends SocketOptionName>(name: N, value: unknown, what: string): SocketOptionValues[N] {
  const spec = specOf(name)
  switch (spec.kind) {
    case 'boolean':
      return booleanArgument(value, what) as SocketOptionValues[N]
    case 'integer':
      return integerArgument(value, what, spec.min!, spec.max!) as SocketOptionValues[N]
    default:
      return asciiNameArgument(value, what, spec.maxLength!, { mayBeEmpty: spec.mayBeEmpty! }) as SocketOptionValues[N]
  }
}

/** Runs a binding call for option `name`; an error it throws names the option in its message
 *  (and `target`, the descriptor, when the caller gave one: `atTarget`). */
export function optionCall<T>(name: SocketOptionName, call: () => T, target?: ErrorTarget): T {
  try {
    return target === undefined ? callNative(call) : callNativeAt(target, call)
  } catch (err) {
    if (err instanceof Error) err.message = `${err.message} (${name})`
    throw err
  }
}
