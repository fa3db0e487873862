//! New clients of a datagram proxy whose route the consumer decides: each waits, with the first
//! datagrams it sent, for the answer to its DATAGRAM_ROUTE record, named by a token.

use crate::ids::IdMap;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Datagrams a waiting client may queue (its first included); more are dropped and counted.
const QUEUED_MAX: usize = 16;
/// Bytes likewise.
const QUEUED_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug)]
pub struct Waiting {
    pub client: SocketAddr,
    pub datagrams: Vec<Box<[u8]>>,
    bytes: usize,
}

#[derive(Debug, Default)]
pub struct Routing {
    by_token: IdMap<Waiting>,
    by_client: HashMap<SocketAddr, u32>,
    next_token: u32,
}

impl Routing {
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// Whether `client` waits for its route.
    pub fn token_of(&self, client: &SocketAddr) -> Option<u32> {
        self.by_client.get(client).copied()
    }

    /// `client` waits from now on, with `first`; returns its token.
    pub fn start(&mut self, client: SocketAddr, first: &[u8]) -> u32 {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        self.by_client.insert(client, token);
        self.by_token.insert(token, Waiting { client, datagrams: vec![first.into()], bytes: first.len() });
        token
    }

    /// Queues another datagram of a waiting client; false when it is dropped (too many waiting).
    pub fn queue(&mut self, token: u32, datagram: &[u8]) -> bool {
        let Some(w) = self.by_token.get_mut(&token) else { return false };
        if w.datagrams.len() >= QUEUED_MAX || w.bytes + datagram.len() > QUEUED_BYTES_MAX {
            return false;
        }
        w.bytes += datagram.len();
        w.datagrams.push(datagram.into());
        true
    }

    /// The answer for `token` came: the client waits no more.
    pub fn finish(&mut self, token: u32) -> Option<Waiting> {
        let w = self.by_token.remove(&token)?;
        self.by_client.remove(&w.client);
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_client_queues_a_bounded_number_of_datagrams() {
        let mut r = Routing::default();
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let t = r.start(client, b"first");
        assert_eq!(r.token_of(&client), Some(t));
        for _ in 1..QUEUED_MAX {
            assert!(r.queue(t, b"more"));
        }
        assert!(!r.queue(t, b"one too many"));
        let w = r.finish(t).unwrap();
        assert_eq!((w.datagrams.len(), &*w.datagrams[0]), (QUEUED_MAX, &b"first"[..]));
        assert!(r.is_empty() && r.token_of(&client).is_none() && r.finish(t).is_none());
    }
}
