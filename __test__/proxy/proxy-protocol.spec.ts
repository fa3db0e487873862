// PROXY protocol on adopted ports (read in the core: getPeer() and transport.proxyInfo come from
// the header) and sent by connectTCP and relay(); admission limits and drain on adoptStreamPort;
// interop with what HAProxy (send-proxy-v2) and nginx (proxy_protocol on) really send. Both modes.
import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { Reactor, AddressFamily, sockets, IPv4Address, ConnectionLost, type StreamPortOptions } from 'reactor-socket'
import { MODES, EchoRec, Rec, RecFactory, Child, fileTeardown, hasCommand, testIf, within, waitUntil } from '../helpers.js'

const { reactors, cleanups } = fileTeardown()

function adoptPort(r: Reactor, options: StreamPortOptions, protocol: typeof Rec = EchoRec) {
  const fd = sockets.listenTcp({ host: '127.0.0.1', port: 0 })
  const at = (sockets.info(fd).local as IPv4Address).port
  const factory = new RecFactory(protocol)
  const port = r.adoptStreamPort(fd, AddressFamily.INET, factory, options)
  sockets.close(fd)
  return { port, at, factory }
}

function client(at: number): Promise<net.Socket> {
  const c = net.connect(at, '127.0.0.1')
  c.on('error', () => {})
  cleanups.push(() => c.destroy())
  return new Promise((resolve) => c.once('connect', () => resolve(c)))
}

function closedBy(c: net.Socket): Promise<void> {
  return new Promise((resolve) => (c.destroyed ? resolve() : c.once('close', () => resolve())))
}

/** What nginx's stream module (proxy_protocol on) sends for a TCP4 connection: a v1 line. */
const v1 = (src: string, dst: string, sp: number, dp: number) => `PROXY TCP4 ${src} ${dst} ${sp} ${dp}\r\n`

/** What HAProxy's send-proxy-v2 sends for a TCP4 connection (from the spec's layout). */
function v2(src: string, dst: string, sp: number, dp: number, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
  const addr = Buffer.alloc(12)
  src.split('.').forEach((b, i) => (addr[i] = Number(b)))
  dst.split('.').forEach((b, i) => (addr[4 + i] = Number(b)))
  addr.writeUInt16BE(sp, 8)
  addr.writeUInt16BE(dp, 10)
  const head = Buffer.from([0x21, 0x11, 0, 0])
  head.writeUInt16BE(addr.length + tlvs.length, 2)
  return Buffer.concat([sig, head, addr, tlvs])
}

for (const mode of MODES) {
  const tag = `[${mode.name}]`
  const r = new Reactor({ thread: mode.thread })
  reactors.push(r)

  test(`${tag} proxyProtocol: getPeer() is the header's client, proxyInfo carries it, bytes after it arrive as data`, async (t) => {
    const { port, at, factory } = adoptPort(r, { proxyProtocol: true }, Rec)
    const c1 = await client(at)
    c1.write(v1('192.0.2.10', '192.0.2.20', 5555, 443) + 'first bytes')
    const alpn = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]) // ALPN "h2"
    const c2 = await client(at)
    c2.write(Buffer.concat([v2('198.51.100.7', '198.51.100.8', 6000, 8443, alpn), Buffer.from('second')]))
    await waitUntil(() => factory.built.length === 2 && factory.built.every((p: Rec) => p.bytes > 0), 'both connections made with data')
    const byHost = new Map(factory.built.map((p: Rec) => [p.t.getPeer().host, p]))
    const a = byHost.get('192.0.2.10') as Rec
    const b = byHost.get('198.51.100.7') as Rec
    t.truthy(a && b, 'getPeer() names the header\'s source')
    t.is(a.t.getPeer().port, 5555)
    t.is(a.text, 'first bytes')
    t.like(a.t.proxyInfo, { version: 1, command: 'proxy', transport: 'TCP4', tlvs: [] })
    t.is(a.t.proxyInfo.destination.host, '192.0.2.20')
    t.is(b.text, 'second')
    t.like(b.t.proxyInfo, { version: 2, command: 'proxy', transport: 'TCP4' })
    t.deepEqual(b.t.proxyInfo.tlvs.map((x: any) => [x.type, x.value.toString()]), [[1, 'h2']])
    t.is(port.stats().proxyHeaderErrors, 0)
    await port.stopListening()
  })

  test(`${tag} proxyProtocol: no header, a bad one, an untrusted source or one too slow never reach the factory and are counted`, async (t) => {
    const { port, at, factory } = adoptPort(r, { proxyProtocol: { timeout: 200 } })
    const plain = await client(at)
    plain.write('GET / HTTP/1.1\r\n\r\n')
    const broken = await client(at)
    broken.write('PROXY TCP4 999.1.1.1 192.0.2.1 1 2\r\n')
    const slow = await client(at)
    slow.write('PROXY TCP4 ') // and never the rest
    await within(Promise.all([closedBy(plain), closedBy(broken), closedBy(slow)]), 'all three closed')
    await waitUntil(() => port.stats().proxyHeaderErrors === 3, 'all three counted')
    t.is(factory.built.length, 0)
    await port.stopListening()
    const strict = adoptPort(r, { proxyProtocol: { trusted: ['192.0.2.0/24'] } })
    const stranger = await client(strict.at)
    stranger.write(v1('192.0.2.10', '192.0.2.20', 1, 2))
    await within(closedBy(stranger), 'the untrusted source closed')
    t.is(strict.factory.built.length, 0)
    await waitUntil(() => strict.port.stats().proxyHeaderErrors === 1, 'counted')
    await strict.port.stopListening()
  })

  test(`${tag} maxConnections on adoptStreamPort: the mark stops accepting; a close lets the next in`, async (t) => {
    const { port, at, factory } = adoptPort(r, { maxConnections: 2 })
    const cs = await Promise.all([client(at), client(at), client(at), client(at)])
    await waitUntil(() => factory.built.length === 2, 'two protocols at the mark')
    t.is(port.stats().connectionsAccepted, 2, 'the others wait in the backlog: not accepted and closed')
    ;(factory.built[0] as Rec).t.loseConnection()
    await waitUntil(() => factory.built.length === 3, 'a third protocol once one closed')
    for (const c of cs) c.destroy()
    await waitUntil(() => factory.built.length === 4 && port.stats().connectionsActive === 0, 'all served and closed')
    t.true(port.stats().pausedAtMax >= 1)
    await port.stopListening()
  })

  test(`${tag} perSource: a second connection from the same address is closed at once and counted`, async (t) => {
    const { port, at, factory } = adoptPort(r, { perSource: { max: 1 } })
    await client(at)
    await waitUntil(() => factory.built.length === 1, 'the first is served')
    const second = await client(at)
    await within(closedBy(second), 'the second closed')
    t.is(factory.built.length, 1)
    await waitUntil(() => port.stats().refusedPerSource === 1, 'counted')
    await port.stopListening()
  })

  test(`${tag} drain() on adoptStreamPort: stops accepting, lets connections finish, aborts the rest at the deadline`, async (t) => {
    const { port, at, factory } = adoptPort(r, {})
    const finishing = await client(at)
    const lingering = await client(at)
    await waitUntil(() => factory.built.length === 2, 'both served')
    const drained = port.drain({ deadline: 300 })
    finishing.end()
    const counts = await within(drained, 'the drain ended')
    t.deepEqual(counts, { ended: 1, idleClosed: 0, closedAtDeadline: 1 })
    const aborted = factory.built.find((p: Rec) => p.reason instanceof ConnectionLost) as Rec
    t.truthy(aborted, 'the lingering one was aborted at the deadline')
    t.is(aborted.reason.code, 'ECONNABORTED')
    await within(closedBy(lingering), 'the lingering client closed')
    t.is(port.stats().connectionsAccepted, 2, 'the figures survive the port')
  })

  test(`${tag} connectTCP({ proxyHeader }) and relay({ proxyHeader }): the header goes first, then the protocol's bytes`, async (t) => {
    const { at, factory } = adoptPort(r, { proxyProtocol: true }, Rec)
    const p: any = await r.connectTCP('127.0.0.1', at, new RecFactory(Rec), {
      proxyHeader: { version: 2, source: { host: '203.0.113.5', port: 1234 }, destination: { host: '203.0.113.6', port: 80 } },
    })
    p.transport.write('after the header')
    await waitUntil(() => factory.built.length === 1 && (factory.built[0] as Rec).bytes > 0, 'served')
    const server = factory.built[0] as Rec
    t.is(server.t.getPeer().host, '203.0.113.5')
    t.is(server.text, 'after the header')
    p.transport.loseConnection()
    t.throws(() => r.connectTCP('127.0.0.1', at, new RecFactory(Rec), { proxyHeader: { version: 1, source: { host: 'x', port: 1 }, destination: { host: '127.0.0.1', port: 1 } } as any }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => r.connectTCP('127.0.0.1', at, new RecFactory(Rec), { proxyHeader: { version: 3 } as any }), { instanceOf: RangeError })
  })
}

// ---- What the peers really send ---------------------------------------------------------------

const HAS_HAPROXY = hasCommand('haproxy')
const NGINX_STREAM = '/usr/lib/nginx/modules/ngx_stream_module.so'
const HAS_NGINX = hasCommand('nginx') && fs.existsSync(NGINX_STREAM)

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => s.once('listening', resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

async function throughPeer(t: any, start: (front: number, back: number, dir: string) => Child) {
  const r = new Reactor()
  reactors.push(r)
  const { port, at, factory } = adoptPort(r, { proxyProtocol: true }, Rec)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-peer-'))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  const front = await freePort()
  const peer = start(front, at, dir)
  t.teardown(() => peer.kill())
  let c: net.Socket | null = null
  await waitUntil(async () => {
    c = await new Promise<net.Socket | null>((resolve) => {
      const s = net.connect(front, '127.0.0.1')
      s.once('connect', () => resolve(s))
      s.once('error', () => resolve(null))
    })
    return c !== null
  }, 'the peer listening', 10_000, 50)
  const sock = c as unknown as net.Socket
  sock.write('through the peer')
  await waitUntil(() => factory.built.length === 1 && (factory.built[0] as Rec).bytes >= 16, 'the connection reached the port')
  const server = factory.built[0] as Rec
  t.is(server.t.getPeer().host, '127.0.0.1')
  t.is(server.t.getPeer().port, sock.localPort, "getPeer() is the client behind the peer, not the peer's own socket")
  t.is(server.text, 'through the peer')
  sock.destroy()
  await port.stopListening()
  return server.t.proxyInfo
}

testIf(HAS_HAPROXY, 'haproxy is not installed (Debian: apt-get install haproxy)')(
  "HAProxy's send-proxy-v2 is parsed as it sends it",
  async (t) => {
    const info = await throughPeer(t, (front, back, dir) => {
      const cfg = path.join(dir, 'haproxy.cfg')
      fs.writeFileSync(cfg, [
        'global', '  nbthread 1', 'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s',
        'frontend f', `  bind 127.0.0.1:${front}`, '  default_backend b',
        'backend b', `  server s 127.0.0.1:${back} send-proxy-v2`, '',
      ].join('\n'))
      return new Child(spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] }))
    })
    t.like(info, { version: 2, command: 'proxy', transport: 'TCP4' })
  },
)

testIf(HAS_NGINX, 'nginx with the stream module is not installed (Debian: apt-get install nginx libnginx-mod-stream)')(
  "nginx's proxy_protocol on is parsed as it sends it",
  async (t) => {
    const info = await throughPeer(t, (front, back, dir) => {
      const cfg = path.join(dir, 'nginx.conf')
      fs.writeFileSync(cfg, [
        `load_module ${NGINX_STREAM};`, 'daemon off;', 'master_process on;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/error.log;`, 'events { worker_connections 64; }',
        'stream {', `  server { listen 127.0.0.1:${front}; proxy_pass 127.0.0.1:${back}; proxy_protocol on; }`, '}', '',
      ].join('\n'))
      // nginx's worker outlives a killed master: stop both the way nginx is stopped.
      cleanups.push(() => spawnSync('nginx', ['-c', cfg, '-p', dir, '-e', `${dir}/error.log`, '-s', 'stop'], { stdio: 'ignore', timeout: 5000 }))
      return new Child(spawn('nginx', ['-c', cfg, '-p', dir, '-e', `${dir}/error.log`], { stdio: 'ignore' }))
    })
    t.like(info, { version: 1, command: 'proxy', transport: 'TCP4' })
  },
)
