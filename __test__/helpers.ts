// Shared helpers for the ava suite, one concern per module under ./helpers/; spec files import
// them all from here. Only the public API of 'reactor-socket' is used.
export * from './helpers/waits.js'
export * from './helpers/modes.js'
export * from './helpers/fds.js'
export * from './helpers/kernel.js'
export * from './helpers/raw-sockets.js'
export * from './helpers/peers.js'
export * from './helpers/recorders.js'
export * from './helpers/children.js'
export * from './helpers/tools.js'
export * from './helpers/memory.js'
export * from './helpers/udp-offload.js'
