// The wire format, as exported by the binding (see crates/core: batch.rs, stream_state.rs,
// validate.rs, address.rs; crates/node/src/wire.rs gives them these names). Module constants, so
// the dispatch reads them as cheaply as literals.
import { binding } from './native'

// Record kinds of a batch: records are [kind, id, a, b] (EVENT_STRIDE u32s).
export const {
  EV_ACCEPT, // id = listening port; a = new connection id; b = offset of the peer's address record
  EV_DATA, // id = connection; a = offset; b = length
  EV_EOF, // id = connection: the peer sent FIN; the core stopped reading it
  EV_CLOSED, // id = connection: the core closed it; a = errno (0: orderly, after a flush)
  EV_DRAINED, // id = connection: its write queue became empty
  EV_WRITE_CLOSED, // id = connection: FIN sent once the queue drained after shutdownWrite()
  EV_DATAGRAM, // id = datagram port; a = offset of the sender's address record; b = payload length
  EV_DATAGRAM_ERROR, // id = datagram port; a = errno reported by a receive
  EV_DATA_CHUNK, // id = connection; a = index into the batch's chunks; b = length
  EV_CONNECTED, // id = connection: its outbound connect completed; a = offset of the peer's address record
  EV_RELAY_ENDED, // id = relay; a = offset of two u64 (LE) in data: bytes moved a→b, b→a
  EV_NONE, // a record taken out of the batch (by a relay): skipped
  EV_FDS, // id = connection; a = offset of b descriptor numbers (u32 LE) in data, received with the data that follows
  EV_PROXY_INFO, // id = connection or proxy session; a = offset, b = length of its PROXY header's payload (before its ACCEPT or ROUTE)
  EV_ROUTE, // id = proxy session waiting for a route; a = offset of the client's address record; b = the proxy port
  EV_PORT_DRAINED, // id = port whose drain finished; a = offset of three u64 (LE): ended, idle closed, closed at the deadline
  EV_TLS_READY, // id = connection whose TLS handshake completed; a = offset, b = length of its parameters (before its ACCEPT or CONNECTED, or alone after startTLS)
  EV_TLS_ERROR, // id = connection (or a connect); a = offset, b = length of its TLS failure (just before its EV_CLOSED)
  EVENT_STRIDE,
  BATCH_HEADER, // takeBatch writes [records, chunks] before the records
  RECORDS_OVERFLOW, // records when they did not fit (take them with takeOverflowEvents)
  ADDRESS_RECORD_HEADER, // u8 family, u8 hostLength, u16 port, u32 flowInfo, u32 scopeId (LE), host
} = binding

// A stream connection's state, as the core reports it (a bit set).
export const {
  STATE_PAUSED,
  STATE_READ_EOF,
  STATE_READ_STOPPED,
  STATE_WRITE_CLOSING,
  STATE_WRITE_CLOSED,
  STATE_DISCONNECTING,
  STATE_CLOSED, // the call that returned this closed the connection
  STATE_GONE, // the core no longer knows the id: an event reports (or reported) its close
  STATE_CONNECTING,
  STATE_RELAYING,
} = binding

// What to adopt, and why an adoption was refused.
export const {
  ADOPT_LISTENER,
  ADOPT_CONNECTION,
  ADOPT_DATAGRAM,
  REFUSED_OS,
  REFUSED_SOCKET_TYPE,
  REFUSED_FAMILY,
  REFUSED_NOT_LISTENING,
  REFUSED_NOT_CONNECTED,
} = binding

// Datagram proxies (listenDatagramProxy): a new client waiting for the routing function, and the
// end of a stopped port.
export const {
  EV_DATAGRAM_ROUTE, // id = datagram proxy port; a = offset of [u32 LE token, client's address record, datagram]; b = datagram length
  EV_DATAGRAM_PROXY_CLOSED, // id = datagram proxy port: its stop finished (sessions ended, socket closed)
} = binding
