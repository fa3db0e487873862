// The programs scripts/install-test.mjs writes into the empty project: what a user of the installed
// package would write. Each echoes a message through the installed package over loopback TCP
// (sockets.listenTcp → reactor.adoptStreamPort, a node:net client) in both reactor modes, prints
// `ECHO <label> <node version>`, and then must exit by itself (nothing left open). A watchdog exits
// with 2 if the echo does not complete in time.

export const MESSAGE = 'hello through the installed package'

// Shared by the JavaScript programs: rs is the package's exports (however they were imported).
const ECHO_JS = `
const MESSAGE = ${JSON.stringify(MESSAGE)}

async function echoOnce(rs, net, thread) {
  const reactor = new rs.Reactor({ thread })
  class Echo extends rs.Protocol {
    dataReceived(data) {
      this.transport.write(data)
    }
  }
  const fd = rs.sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const port = reactor.adoptStreamPort(fd, rs.AddressFamily.INET, rs.ServerFactory.forProtocol(Echo))
  rs.sockets.close(fd)
  const reply = await new Promise((resolve, reject) => {
    const client = net.connect(port.getHost().port, '127.0.0.1', () => client.end(MESSAGE))
    const chunks = []
    client.on('data', (chunk) => chunks.push(chunk))
    client.on('end', () => resolve(Buffer.concat(chunks).toString()))
    client.on('error', reject)
  })
  await port.stopListening()
  await reactor.close()
  if (reply !== MESSAGE) throw new Error('echo returned ' + JSON.stringify(reply))
}

async function main(rs, net, label) {
  const watchdog = setTimeout(() => {
    console.error(label + ': no echo within 10 s')
    process.exit(2)
  }, 10000)
  watchdog.unref()
  for (const thread of [true, false]) await echoOnce(rs, net, thread)
  console.log('ECHO ' + label + ' ' + process.version)
}
`

const ECHO_CJS = `'use strict'
const net = require('node:net')
const rs = require('reactor-socket')
${ECHO_JS}
main(rs, net, 'commonjs')
`

const ECHO_ESM_NAMED = `import * as net from 'node:net'
import { Reactor, Protocol, ServerFactory, AddressFamily, sockets } from 'reactor-socket'
${ECHO_JS}
await main({ Reactor, Protocol, ServerFactory, AddressFamily, sockets }, net, 'esm-named')
`

// The default export must be the CommonJS module itself, and every named export its property.
const ECHO_ESM_DEFAULT = `import * as net from 'node:net'
import { createRequire } from 'node:module'
import rs from 'reactor-socket'
import * as named from 'reactor-socket'
${ECHO_JS}
const cjs = createRequire(import.meta.url)('reactor-socket')
if (rs !== cjs) throw new Error('the default export is not the CommonJS module')
for (const name of Object.keys(named)) {
  if (name !== 'default' && named[name] !== cjs[name]) throw new Error(name + ' differs between import and require')
}
await main(rs, net, 'esm-default')
`

// TypeScript: the same echo with the package's types, compiled by tsc with module node16. The
// @ts-expect-error lines make tsc fail if the types accept what the run time would reject.
const echoTs = (imports, label) => `${imports}

const MESSAGE = ${JSON.stringify(MESSAGE)}

class Echo extends Protocol {
  dataReceived(data: Buffer): void {
    this.transport.write(data)
  }
}

async function echoOnce(thread: boolean): Promise<void> {
  const reactor = new Reactor({ thread })
  const fd: number = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const port: ListeningPort = reactor.adoptStreamPort(fd, AddressFamily.INET, ServerFactory.forProtocol(Echo))
  sockets.close(fd)
  const host = port.getHost()
  if (!(host instanceof IPv4Address)) throw new Error('expected an IPv4 address, got ' + String(host))
  const reply = await new Promise<string>((resolve, reject) => {
    const client = net.connect(host.port, '127.0.0.1', () => client.end(MESSAGE))
    const chunks: Buffer[] = []
    client.on('data', (chunk: Buffer) => chunks.push(chunk))
    client.on('end', () => resolve(Buffer.concat(chunks).toString()))
    client.on('error', reject)
  })
  await port.stopListening()
  await reactor.close()
  if (reply !== MESSAGE) throw new Error('echo returned ' + JSON.stringify(reply))
}

// Never called: tsc must reject it.
function misuse(): void {
  // @ts-expect-error an fd is a number
  new Reactor().adoptStreamPort('3', AddressFamily.INET, new ServerFactory())
}
void misuse

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error('${label}: no echo within 10 s')
    process.exit(2)
  }, 10000)
  watchdog.unref()
  for (const thread of [true, false]) await echoOnce(thread)
  console.log('ECHO ${label} ' + process.version)
}
`

const ECHO_CTS = `${echoTs(
  `import * as net from 'node:net'
import { Reactor, Protocol, ServerFactory, AddressFamily, IPv4Address, ListeningPort, sockets } from 'reactor-socket'`,
  'typescript-cjs',
)}
main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
`

const ECHO_MTS = `${echoTs(
  `import * as net from 'node:net'
import rs, { ListeningPort } from 'reactor-socket'
const { Reactor, Protocol, ServerFactory, AddressFamily, IPv4Address, sockets } = rs
// @ts-expect-error the default export is the CommonJS module, which has no \`default\` of its own
void rs.default`,
  'typescript-esm',
)}
await main()
`

/** tsconfig.json for the TypeScript programs: `typesDir` holds @types/node (the repository's). */
export const tsconfig = (typesDir) =>
  JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'node16',
        moduleResolution: 'node16',
        strict: true,
        skipLibCheck: false,
        typeRoots: [typesDir],
        types: ['node'],
        outDir: 'out',
      },
      files: ['echo.cts', 'echo.mts'],
    },
    null,
    2,
  )

/** file name → source, for the JavaScript programs (run as they are). */
export const JS_PROGRAMS = {
  'echo.cjs': ECHO_CJS,
  'echo-named.mjs': ECHO_ESM_NAMED,
  'echo-default.mjs': ECHO_ESM_DEFAULT,
}

/** file name → source, for the TypeScript programs (tsc writes out/echo.cjs and out/echo.mjs). */
export const TS_PROGRAMS = {
  'echo.cts': ECHO_CTS,
  'echo.mts': ECHO_MTS,
}

/**
 * Loading the package where its platform package is missing. load.cjs prints the error's code,
 * message and whether it carries a cause, as JSON; load.mjs imports it statically and so fails the
 * way a user's program does, with the error on stderr.
 */
export const LOAD_CJS = `'use strict'
try {
  require('reactor-socket')
  console.log(JSON.stringify({ loaded: true }))
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message, hasCause: err.cause !== undefined }))
}
`
export const LOAD_ESM = `import 'reactor-socket'
console.log('loaded')
`
