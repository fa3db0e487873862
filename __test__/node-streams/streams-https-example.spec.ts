// examples/https-server.js, run as a child process: HTTPS (Node's https.Server over SocketStreams) on
// a listening socket it inherits as systemd passes one (fd 3, LISTEN_FDS=1, LISTEN_PID) or makes
// itself, with a certificate made at test time by openssl. Real HTTPS requests (keep-alive, a body
// checked by SHA-256), then /quit: the child exits by itself. Both reactor modes.
import test from 'ava'
import * as https from 'node:https'
import * as path from 'node:path'
import { spawn } from 'node:child_process'
import { Child, MODES, child, closeFd, killChildren, limiter, listenTcp4, portOf, testIf, within } from '../helpers.js'
import { HAVE_OPENSSL, MiB, makeCert, patternBytes, readAll, removeCert, sha256, type TestCert } from './streams-helpers.js'

const EXAMPLE = path.join(process.cwd(), 'examples', 'https-server.js')
const NO_OPENSSL = 'openssl is not installed, no certificate can be made'
const withOpenssl = testIf(HAVE_OPENSSL, NO_OPENSSL)
const oneAtATime = limiter(2)

let cert: TestCert | undefined
test.before(async () => {
  if (HAVE_OPENSSL) cert = await makeCert()
})
test.after.always(() => {
  killChildren()
  removeCert(cert)
})

function request(port: number, options: https.RequestOptions, body?: Buffer) {
  return within(
    new Promise<{ status?: number | undefined; text: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, servername: 'localhost', ca: cert!.cert, ...options },
        async (res) => {
          try {
            resolve({ status: res.statusCode, text: (await readAll(res, 'the response')).toString() })
          } catch (err) {
            reject(err)
          }
        },
      )
      req.once('error', reject)
      req.end(body)
    }),
    `https ${options.method ?? 'GET'} ${options.path}`,
    20000,
  )
}

for (const mode of MODES) {
  for (const how of ['inherited fd 3', 'its own socket'] as const) {
    withOpenssl(`[${mode.name}] examples/https-server.js on ${how}: HTTPS requests, then /quit and it exits`, (t) =>
      oneAtATime(async () => {
        const args = ['--cert', cert!.certPath, '--key', cert!.keyPath]
        if (!mode.thread) args.push('--no-thread')
        let c: Child
        if (how === 'inherited fd 3') {
          // As systemd does: the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID = the server's own pid
          // (the shell sets it to its pid, then execs node, which keeps that pid).
          const fd = listenTcp4()
          c = new Child(
            spawn('sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, EXAMPLE, ...args], {
              stdio: ['ignore', 'pipe', 'pipe', fd],
              env: { ...process.env, LISTEN_FDS: '1' },
            }),
          )
          t.teardown(() => c.kill())
          t.is((await c.line('listening ')).replace(/.*:/, ''), String(portOf(fd)), 'it serves the inherited socket')
          closeFd(fd)
        } else {
          c = child(EXAMPLE, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        }
        const port = Number((await c.line('listening https://127.0.0.1:')).trim())
        t.true(port > 0)

        const agent = new https.Agent({ keepAlive: true, maxSockets: 1 })
        const hello = await request(port, { path: '/', headers: { 'x-client': 'ava' }, agent })
        t.is(hello.status, 200)
        t.is(hello.text, 'hello over TLS, ava\n')
        const body = patternBytes(MiB, 21)
        const hashed = await request(port, { path: '/sha256', method: 'POST', agent }, body)
        t.is(hashed.text, `${sha256(body)}\n`)
        agent.destroy()

        const bye = await request(port, { path: '/quit', agent: false })
        t.is(bye.text, 'bye\n')
        const result = await c.wait(15000)
        t.is(result.code, 0, `exit code (stderr: ${result.stderr})`)
        t.regex(result.stdout, /connection from 127\.0\.0\.1:\d+/)
        t.regex(result.stdout, /stopped listening/)
        // The listening socket is gone with the child: a new connection is refused.
        const refused = await new Promise<string | undefined>((resolve) => {
          const req = https.get({ host: '127.0.0.1', port, ca: cert!.cert, servername: 'localhost' }, () => resolve(undefined))
          req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code))
        })
        t.is(refused, 'ECONNREFUSED')
      }),
    )
  }
}
