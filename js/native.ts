// The binding as the TypeScript layer sees it. Its types are the ones napi-rs generates from the
// Rust code (native/binding.d.ts, written by the native build), and the wire format between the core
// and this layer (record kinds, batch layout, state bits, refusal kinds) comes from the binding's
// own constants: each is defined once, in the core, and only named here.
import { loadNativeBinding } from './load-native'
import type * as Generated from '../native/binding'

export type NativeBinding = typeof Generated
export type NativeReactor = Generated.NativeReactor
export type AdoptResult = Generated.AdoptResult
export type SocketInfo = Generated.sockets.SocketInfo
export type NativeHandoffOutcome = Generated.handoff.Outcome
export type NativeDatagramProxyOptions = Generated.DatagramProxyOptions
// Re-exported, not aliased: the public names (ReactorStats, DatagramProxyStats) are these very types,
// so the API reference documents them with the core's field docs and links every use.
export type { JsDatagramProxyStats as NativeDatagramProxyStats, ReactorStats as NativeStats } from '../native/binding'
export type NativeHandoffControl = NonNullable<Generated.handoff.Outcome['control']>

// Throws an Error with a `code` naming the supported platforms when this machine's binary is missing.
export const binding = loadNativeBinding<NativeBinding>()
export type PortOptions = Generated.PortOptions
export type UpstreamAddress = Generated.UpstreamAddress
export type NativePortStats = Generated.JsPortStats
