//! The wire format between the core and the TypeScript layer, exported as constants. Each value is
//! defined once, in `reactor_core::wire`; these lines only give it its JS name (js/wire.ts reads them
//! from here).

use napi_derive::napi;
use reactor_core::wire::{self, bits, family, kind, refusal, socket_type};

// Record kinds of a batch (`[kind, id, a, b]`); see reactor_core::wire::kind for a and b.
#[napi]
pub const EV_ACCEPT: u32 = kind::ACCEPT;
#[napi]
pub const EV_DATA: u32 = kind::DATA;
#[napi]
pub const EV_EOF: u32 = kind::EOF;
#[napi]
pub const EV_CLOSED: u32 = kind::CLOSED;
#[napi]
pub const EV_DRAINED: u32 = kind::DRAINED;
#[napi]
pub const EV_WRITE_CLOSED: u32 = kind::WRITE_CLOSED;
#[napi]
pub const EV_DATAGRAM: u32 = kind::DATAGRAM;
#[napi]
pub const EV_DATAGRAM_ERROR: u32 = kind::DATAGRAM_ERROR;
#[napi]
pub const EV_DATA_CHUNK: u32 = kind::DATA_CHUNK;
#[napi]
pub const EV_CONNECTED: u32 = kind::CONNECTED;
#[napi]
pub const EV_RELAY_ENDED: u32 = kind::RELAY_ENDED;
#[napi]
pub const EV_NONE: u32 = kind::NONE;
#[napi]
pub const EV_FDS: u32 = kind::FDS;
#[napi]
pub const EV_PROXY_INFO: u32 = kind::PROXY_INFO;
#[napi]
pub const EV_ROUTE: u32 = kind::ROUTE;
#[napi]
pub const EV_PORT_DRAINED: u32 = kind::PORT_DRAINED;
#[napi]
pub const EV_DATAGRAM_ROUTE: u32 = kind::DATAGRAM_ROUTE;
#[napi]
pub const EV_DATAGRAM_PROXY_CLOSED: u32 = kind::DATAGRAM_PROXY_CLOSED;
#[napi]
pub const EV_TLS_READY: u32 = kind::TLS_READY;
#[napi]
pub const EV_TLS_ERROR: u32 = kind::TLS_ERROR;

// Batch layout.
#[napi]
pub const EVENT_STRIDE: u32 = wire::STRIDE as u32;
#[napi]
pub const BATCH_HEADER: u32 = wire::BATCH_HEADER as u32;
#[napi]
pub const RECORDS_OVERFLOW: u32 = wire::RECORDS_OVERFLOW;
#[napi]
pub const ADDRESS_RECORD_HEADER: u32 = wire::address::RECORD_HEADER as u32;

// A stream connection's state (reactor_core::wire::bits).
#[napi]
pub const STATE_PAUSED: u32 = bits::PAUSED;
#[napi]
pub const STATE_READ_EOF: u32 = bits::READ_EOF;
#[napi]
pub const STATE_READ_STOPPED: u32 = bits::READ_STOPPED;
#[napi]
pub const STATE_WRITE_CLOSING: u32 = bits::WRITE_CLOSING;
#[napi]
pub const STATE_WRITE_CLOSED: u32 = bits::WRITE_CLOSED;
#[napi]
pub const STATE_DISCONNECTING: u32 = bits::DISCONNECTING;
#[napi]
pub const STATE_CLOSED: u32 = bits::CLOSED;
#[napi]
pub const STATE_GONE: u32 = bits::GONE;
#[napi]
pub const STATE_CONNECTING: u32 = bits::CONNECTING;
#[napi]
pub const STATE_RELAYING: u32 = bits::RELAYING;

// What to adopt, and why an adoption was refused.
#[napi]
pub const ADOPT_LISTENER: u32 = wire::ADOPT_LISTENER;
#[napi]
pub const ADOPT_CONNECTION: u32 = wire::ADOPT_CONNECTION;
#[napi]
pub const ADOPT_DATAGRAM: u32 = wire::ADOPT_DATAGRAM;
#[napi]
pub const REFUSED_OS: u32 = refusal::OS;
#[napi]
pub const REFUSED_SOCKET_TYPE: u32 = refusal::SOCKET_TYPE;
#[napi]
pub const REFUSED_FAMILY: u32 = refusal::FAMILY;
#[napi]
pub const REFUSED_NOT_LISTENING: u32 = refusal::NOT_LISTENING;
#[napi]
pub const REFUSED_NOT_CONNECTED: u32 = refusal::NOT_CONNECTED;

// The families and socket types the package names (js/constants.ts).
#[napi]
pub const AF_UNIX: i32 = family::UNIX;
#[napi]
pub const AF_INET: i32 = family::INET;
#[napi]
pub const AF_INET6: i32 = family::INET6;
#[napi]
pub const SOCK_STREAM: i32 = socket_type::STREAM;
#[napi]
pub const SOCK_DGRAM: i32 = socket_type::DGRAM;
#[napi]
pub const SOCK_SEQPACKET: i32 = socket_type::SEQPACKET;
#[napi]
pub const SOCK_RAW: i32 = socket_type::RAW;
