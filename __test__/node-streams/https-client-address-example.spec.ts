// examples/https-client-address.js (a README recipe), run as a child process: TLS in the core, Node's
// plain http.Server over SocketStreams, and the client's address in every answer. Directly, the
// address is the TCP peer's; with --proxy-protocol <cidr>, it is the one a load balancer put in the
// PROXY header (written here by hand, v1 text and v2 binary), and a connection without a header is
// closed before TLS. SIGTERM: it stops and exits by itself. Both reactor modes.
import test from 'ava'
import * as https from 'node:https'
import * as net from 'node:net'
import * as path from 'node:path'
import * as tls from 'node:tls'
import { MODES, child, killChildren, limiter, within } from '../helpers.js'
import { HAVE_OPENSSL, makeCert, readAll, removeCert, type TestCert } from './streams-helpers.js'
import { testIf } from '../helpers.js'

const EXAMPLE = path.join(process.cwd(), 'examples', 'https-client-address.js')
const withOpenssl = testIf(HAVE_OPENSSL, 'openssl is not installed, no certificate can be made')
const oneAtATime = limiter(2)

let cert: TestCert | undefined
test.before(async () => {
  if (HAVE_OPENSSL) cert = await makeCert()
})
test.after.always(() => {
  killChildren()
  removeCert(cert)
})

type Answer = { client: string; port: number; tls: string }

function get(port: number): Promise<Answer> {
  return within(
    new Promise<Answer>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, servername: 'localhost', ca: cert!.cert, agent: false }, async (res) => {
        try {
          resolve(JSON.parse((await readAll(res, 'the answer')).toString()))
        } catch (err) {
          reject(err)
        }
      })
      req.once('error', reject)
    }),
    'an https GET',
    15000,
  )
}

/** A GET over TLS after `header`, sent in the clear first, as a load balancer does. */
function getBehindBalancer(port: number, header: Buffer): Promise<Answer> {
  return within(
    new Promise<Answer>((resolve, reject) => {
      const raw = net.connect(port, '127.0.0.1', () => {
        raw.write(header)
        const secure = tls.connect({ socket: raw, servername: 'localhost', ca: cert!.cert }, () => {
          secure.end('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n')
        })
        readAll(secure, 'the answer').then((bytes) => {
          const text = bytes.toString()
          resolve(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)))
        }, reject)
        secure.once('error', reject)
      })
      raw.once('error', reject)
    }),
    'a GET behind a balancer',
    15000,
  )
}

/** A PROXY v2 header for a TCP/IPv4 client `src`:`srcPort` to 127.0.0.1:`dstPort`, written by hand. */
function v2Header(src: string, srcPort: number, dstPort: number): Buffer {
  const signature = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
  const addresses = Buffer.alloc(12)
  Buffer.from(src.split('.').map(Number)).copy(addresses, 0)
  Buffer.from([127, 0, 0, 1]).copy(addresses, 4)
  addresses.writeUInt16BE(srcPort, 8)
  addresses.writeUInt16BE(dstPort, 10)
  const head = Buffer.from([0x21, 0x11, 0, 12]) // v2 PROXY, TCP over IPv4, 12 bytes follow
  return Buffer.concat([signature, head, addresses])
}

for (const mode of MODES) {
  withOpenssl(`[${mode.name}] examples/https-client-address.js: the TCP peer's address over TLS in the core`, (t) =>
    oneAtATime(async () => {
      const args = ['--cert', cert!.certPath, '--key', cert!.keyPath, ...(mode.thread ? [] : ['--no-thread'])]
      const c = child(EXAMPLE, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      const port = Number((await c.line('listening 127.0.0.1:')).trim())
      const answer = await get(port)
      t.is(answer.client, '127.0.0.1')
      t.true(answer.port > 0)
      t.regex(answer.tls, /^TLSv1\.[23]$/)
      c.proc.kill('SIGTERM')
      const result = await c.wait(15000)
      t.is(result.code, 0, `exit code (stderr: ${result.stderr})`)
    }),
  )

  withOpenssl(`[${mode.name}] examples/https-client-address.js --proxy-protocol: the balancer's client, and no header is no service`, (t) =>
    oneAtATime(async () => {
      const args = ['--cert', cert!.certPath, '--key', cert!.keyPath, '--proxy-protocol', '127.0.0.0/8', ...(mode.thread ? [] : ['--no-thread'])]
      const c = child(EXAMPLE, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      const port = Number((await c.line('listening 127.0.0.1:')).trim())

      const v1 = await getBehindBalancer(port, Buffer.from(`PROXY TCP4 198.51.100.9 127.0.0.1 40001 ${port}\r\n`))
      t.deepEqual([v1.client, v1.port], ['198.51.100.9', 40001])
      const v2 = await getBehindBalancer(port, v2Header('203.0.113.7', 4242, port))
      t.deepEqual([v2.client, v2.port], ['203.0.113.7', 4242])

      // A client that skips the header (TLS at once) is closed by the core: no answer, no address guessed.
      const refused = await within(
        new Promise<string>((resolve) => {
          const req = https.get({ host: '127.0.0.1', port, servername: 'localhost', ca: cert!.cert, agent: false }, () => resolve('answered'))
          req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
        }),
        'a GET without a PROXY header',
        15000,
      )
      t.not(refused, 'answered')
      c.proc.kill('SIGTERM')
      const result = await c.wait(15000)
      t.is(result.code, 0, `exit code (stderr: ${result.stderr})`)
    }),
  )
}
