// Turning what users write into bytes: Uint8Array as is (Buffers included), strings as UTF-8.
import { invalidArgType } from './errors'
import { describe } from './validate'

export function toBytes(data: unknown, what: string): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  throw invalidArgType(`${what}: data must be a Uint8Array or a string, not ${describe(data)}`)
}

/**
 * Checks every chunk before anything is written. Returns the caller's own array when it holds only
 * Uint8Arrays (no copy), else a converted copy.
 */
export function toByteChunks(chunks: unknown, what: string): Uint8Array[] {
  if (chunks === null || typeof chunks !== 'object' || !(Symbol.iterator in chunks)) {
    throw invalidArgType(`${what}: chunks must be an iterable of Uint8Array or string, not ${describe(chunks)}`)
  }
  const list: unknown[] = Array.isArray(chunks) ? chunks : Array.from(chunks as Iterable<unknown>)
  let converted: Uint8Array[] | null = null
  for (let i = 0; i < list.length; i++) {
    const item = list[i]
    if (item instanceof Uint8Array) {
      if (converted !== null) converted.push(item)
      continue
    }
    const bytes = toBytes(item, what)
    converted ??= (list as Uint8Array[]).slice(0, i)
    converted.push(bytes)
  }
  return converted ?? (list as Uint8Array[])
}
