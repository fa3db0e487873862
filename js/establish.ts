// Making a connection of an id the core holds: the factory builds the protocol for the peer, the
// transport is registered, then makeConnection → connectionMade. One place for it, whether the
// connection was adopted, accepted by a port or connected out: those differ only in how a connection
// nobody wants is closed and in who hears of a callback that throws.
import type { Address } from './address'
import type { AddressFamily } from './constants'
import type { ReactorHost } from './host'
import type { IProtocol, IProtocolFactory } from './interfaces'
import type { ProxyInfo } from './proxy-info'
import type { TlsInfo } from './tls-types'
import { StreamTransport } from './transport'

/**
 * How the connection came:
 * - 'adopted' (adoptStreamConnection): the caller still holds its own fd, so a connection nobody
 *   wants only loses the reactor's duplicate (no shutdown). A callback's throw is the caller's: the
 *   adoption is undone (no connectionLost, onError not called) and the error is rethrown.
 * - 'connected' (connectTCP / connectUNIX): a connection nobody wants is closed (the peer sees EOF);
 *   a throw is the caller's, as for an adoption (the connect's promise rejects with it).
 * - 'accepted' (a listening port): a connection nobody wants is closed; a throw is reported
 *   (onError), and from makeConnection aborts the connection with it as the reason.
 */
export type Arrival = 'adopted' | 'connected' | 'accepted'

/** The protocol now connected, or undefined when the factory declined (the connection is closed). */
export function establish(
  host: ReactorHost,
  id: number,
  family: AddressFamily,
  factory: IProtocolFactory,
  peer: Address,
  arrival: Arrival,
  proxyInfo: ProxyInfo | null = null,
  /** Bytes to send before the protocol hears of the connection (a PROXY header). */
  firstBytes: Uint8Array | null = null,
  /** Its TLS session's parameters (the handshake is done: a TLS port, a connect with TLS). */
  tlsInfo: TlsInfo | null = null,
): IProtocol | undefined {
  let protocol: IProtocol | null | undefined
  try {
    protocol = factory.buildProtocol(peer)
  } catch (err) {
    closeUnowned(host, id, arrival)
    if (arrival !== 'accepted') throw err
    host.report(err) // the port keeps accepting
    return undefined
  }
  if (protocol === null || protocol === undefined) {
    closeUnowned(host, id, arrival)
    return undefined
  }
  if (firstBytes !== null) host.native.write(id, firstBytes)
  const transport = new StreamTransport(host, id, family, protocol, peer, proxyInfo, tlsInfo, arrival === 'accepted')
  if (arrival === 'accepted') {
    transport.start()
    return protocol
  }
  try {
    protocol.makeConnection(transport)
  } catch (err) {
    transport.discard()
    throw err
  }
  return protocol
}

function closeUnowned(host: ReactorHost, id: number, arrival: Arrival): void {
  if (arrival === 'adopted') host.native.closePort(id)
  else host.closeUnwanted(id)
}
