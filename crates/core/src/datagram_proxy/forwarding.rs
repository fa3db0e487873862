//! What the datagram proxies of a reactor share while the loop serves them (the state's part of
//! them; `event_loop::datagram_proxy` carries out their steps).

use crate::datagram::send_queue::SendQueue;
use crate::sys::mmsg::RecvBatch;
use crate::wire::DatagramProxyStats;
use crate::ids::IdSet;
use std::collections::{HashMap, VecDeque};

/// What the datagram proxies of a reactor share: one reader for every session's replies, one
/// queue for the datagrams on their way to one session's upstream, and the final figures of
/// ports that closed until the consumer reads them.
#[derive(Default)]
pub struct Forwarding {
    pub replies_recv: Option<RecvBatch>,
    pub to_upstream: Option<SendQueue>,
    /// The session `to_upstream` holds datagrams for.
    pub to_session: Option<u32>,
    pub closed: HashMap<u32, DatagramProxyStats>,
    /// Ports and sessions to service again before the turn ends (replies to send, budget spent).
    pub work: VecDeque<u32>,
    pub work_ids: IdSet,
}

