// Peers of the datagram proxy tests: UDP upstreams (an echo that records who sent what, and can
// parse a PROXY v2 header) and clients that count their answers.
import * as dgram from 'node:dgram'
import { sockets } from 'reactor-socket'
import { waitUntil } from './waits.js'

/** A UDP echo server on loopback: it answers each datagram with `reply(payload)` (the payload by
 *  default) and records the source port of every datagram (a session's local port). */
export class UdpUpstream {
  readonly sources: number[] = []
  readonly received: Buffer[] = []
  private constructor(
    readonly socket: dgram.Socket,
    readonly port: number,
  ) {}

  static async start(reply: (payload: Buffer, port: number) => Buffer | null = (p) => p, type: 'udp4' | 'udp6' = 'udp4'): Promise<UdpUpstream> {
    const socket = dgram.createSocket(type)
    await new Promise<void>((resolve) => socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', resolve))
    const u = new UdpUpstream(socket, socket.address().port)
    socket.on('message', (msg, rinfo) => {
      u.sources.push(rinfo.port)
      u.received.push(msg)
      const answer = reply(msg, rinfo.port)
      if (answer !== null) socket.send(answer, rinfo.port, rinfo.address)
    })
    return u
  }

  get address() {
    return { host: this.socket.address().address, port: this.port }
  }

  close() {
    try {
      this.socket.close()
    } catch {}
  }
}

/** A UDP client that records every answer it gets. */
export class UdpClient {
  readonly answers: string[] = []
  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (m) => this.answers.push(m.toString()))
  }

  static async start(type: 'udp4' | 'udp6' = 'udp4'): Promise<UdpClient> {
    const socket = dgram.createSocket(type)
    await new Promise<void>((resolve) => socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', resolve))
    return new UdpClient(socket)
  }

  get port(): number {
    return this.socket.address().port
  }

  send(text: string | Buffer, port: number, host = '127.0.0.1') {
    this.socket.send(text, port, host)
  }

  /** Sends `text` and waits (bounded) for an answer that equals `expect` (default: `text`). UDP on
   *  a loaded machine may drop: sends again now and then. */
  async ask(text: string, port: number, expect = text, host = '127.0.0.1'): Promise<void> {
    const deadline = Date.now() + 10000
    let next = 0
    await waitUntil(
      () => {
        if (this.answers.includes(expect)) return true
        if (Date.now() >= next) {
          this.send(text, port, host)
          next = Date.now() + 500
        }
        return Date.now() > deadline
      },
      `the answer ${JSON.stringify(expect)}`,
    )
    if (!this.answers.includes(expect)) throw new Error(`no answer ${JSON.stringify(expect)}; got ${JSON.stringify(this.answers)}`)
  }

  close() {
    try {
      this.socket.close()
    } catch {}
  }
}

/** Two neighbouring UDP ports free on 0.0.0.0 now (probed in a range few others use). */
export function freePortPair(): [number, number] {
  for (let tries = 0; tries < 200; tries++) {
    const low = 40000 + Math.floor(Math.random() * 20000)
    const fds: number[] = []
    try {
      fds.push(sockets.bindUdp({ host: '0.0.0.0', port: low }))
      fds.push(sockets.bindUdp({ host: '0.0.0.0', port: low + 1 }))
      return [low, low + 1]
    } catch {
      // taken: try another
    } finally {
      for (const fd of fds) sockets.close(fd)
    }
  }
  throw new Error('no two neighbouring free UDP ports')
}

/**
 * The client's address and the payload of a datagram that starts with a PROXY protocol v2 header
 * (IPv4 or IPv6 over UDP), or null when it does not start with one.
 */
export function parseProxyV2(datagram: Buffer): { family: 'udp4' | 'udp6'; host: string; port: number; payload: Buffer } | null {
  const signature = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
  if (datagram.length < 16 || !datagram.subarray(0, 12).equals(signature) || datagram[12] !== 0x21) return null
  const length = datagram.readUInt16BE(14)
  const body = datagram.subarray(16, 16 + length)
  const payload = datagram.subarray(16 + length)
  if (datagram[13] === 0x12) {
    return { family: 'udp4', host: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8), payload }
  }
  if (datagram[13] === 0x22) {
    const groups = []
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16))
    return { family: 'udp6', host: groups.join(':'), port: body.readUInt16BE(32), payload }
  }
  return null
}
