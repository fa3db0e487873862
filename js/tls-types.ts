// The TLS option and parameter types of the public API (no imports: the interfaces and the option
// checks both name them). Names are those of Node's `tls.createServer` / `tls.connect` where they
// mean the same; the checks are in tls-options.ts, the rules in crates/core/src/tls.

/** PEM text: a string, a Buffer, or a list of them (joined, as Node joins `ca` lists). */
export type Pem = string | Uint8Array | Array<string | Uint8Array>

/** A TLS server's options (a port's `tls`, `setSecureContext`, a server `startTLS`). */
export interface TlsServerOptions {
  /** The certificate chain (leaf first) for clients whose SNI matches no `sni` entry. */
  cert?: Pem | undefined
  /** The private key of `cert` (PEM). */
  key?: Pem | undefined
  /** Certificates by the name clients ask for ('host.example.com', '*.example.com'). A client
   *  asking for a name with no entry gets the default `cert`, or `unrecognized_name` without one. */
  sni?:
    | Record<
        string,
        {
          /** The certificate chain (leaf first) for this name. */
          cert: Pem
          /** Its private key. */
          key: Pem
        }
      >
    | undefined
  /** The CAs client certificates must chain to (with `requestCert`). */
  ca?: Pem | undefined
  /** Ask clients for a certificate (default false). */
  requestCert?: boolean | undefined
  /** With `requestCert`: refuse a client without a valid certificate (default true). false lets a
   *  client send none; one it sends must still chain to `ca` (unlike Node, which then lets an
   *  unverified certificate through and says so in `authorized`). */
  rejectUnauthorized?: boolean | undefined
  /** ALPN protocols in preference order ('h2', 'http/1.1'); a client offering only others is
   *  refused with `no_application_protocol`. */
  ALPNProtocols?: Array<string | Uint8Array> | undefined
  /** 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3' | undefined
  /** 'TLSv1.3' (default) or 'TLSv1.2'. */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3' | undefined
  /** Stateless resumption with session tickets (default true). */
  tickets?: boolean | undefined
  /** Sessions kept for stateful resumption (default 256; 0: none). */
  sessionCacheSize?: number | undefined
  /** Milliseconds a handshake may take (default 10000; 0 or Infinity: no limit). A client that
   *  connects and sends nothing is closed then. */
  handshakeTimeout?: number | undefined
}

/** A TLS client's options (`connectTCP`'s `tls`, `listenProxy`'s `upstreamTls`, a client `startTLS`). */
export interface TlsClientOptions {
  /** The CAs the server's certificate must chain to (default: Node's `tls.rootCertificates`). */
  ca?: Pem | undefined
  /** The name sent (SNI) and checked against the certificate, instead of the host connected to. */
  servername?: string | undefined
  /** ALPN protocols to offer, in preference order ('h2', 'http/1.1'). */
  ALPNProtocols?: Array<string | Uint8Array> | undefined
  /** A client certificate, for servers that ask. */
  cert?: Pem | undefined
  /** The private key of `cert` (PEM). */
  key?: Pem | undefined
  /** false: no check of the server's certificate at all (anyone on the path can pose as it). */
  rejectUnauthorized?: boolean | undefined
  /** 'TLSv1.2' (default) or 'TLSv1.3'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3' | undefined
  /** 'TLSv1.3' (default) or 'TLSv1.2'. */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3' | undefined
  /** Sessions remembered for resumption (default 256; 0: none). Kept per options object. */
  sessionCacheSize?: number | undefined
  /** Milliseconds a handshake may take (default 10000; 0 or Infinity: no limit). */
  handshakeTimeout?: number | undefined
}

/** What `transport.tlsInfo` tells about a connection's TLS session (null without TLS). */
export interface TlsInfo {
  /** 'TLSv1.3' or 'TLSv1.2'. */
  protocol: string
  /** The IANA name of the cipher suite (Node's `getCipher().standardName`). */
  cipher: string
  /** The key exchange group ('X25519', 'secp256r1', …). */
  keyExchangeGroup: string | null
  /** The ALPN protocol agreed on, or null. */
  alpnProtocol: string | null
  /** The SNI name: on a server, the one the client asked for; on a client, the one it sent. */
  servername: string | null
  /** The peer's certificates, leaf first, DER. Empty for a client that sent none. */
  peerCertificates: Buffer[]
  /** The handshake resumed an earlier session (no certificate was exchanged in it). */
  resumed: boolean
}

