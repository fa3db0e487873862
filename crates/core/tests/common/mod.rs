//! What the core's integration tests share: a reactor with the consumer side of its
//! announcements, and the events it took.
#![allow(dead_code)]

/// `let c = need_certs!();`: the test certificates (the core's own maker, `test_support::certs`),
/// or skip the test, saying so.
#[macro_export]
macro_rules! need_certs {
    () => {
        match reactor_core::test_support::certs::material() {
            Some(c) => c,
            None => {
                reactor_core::test_support::certs::skip("openssl is not available to make test certificates");
                return;
            }
        }
    };
}

use reactor_core::wire::{address, kind};
use reactor_core::{Notify, Reactor};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Channel(Mutex<Sender<()>>);

impl Notify for Channel {
    fn batch_ready(&self) {
        let _ = self.0.lock().unwrap().send(());
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: u32,
    pub id: u32,
    pub a: u32,
    pub bytes: Vec<u8>,
}

/// A reactor plus the consumer side of its announcements.
pub struct Harness {
    pub reactor: Reactor,
    pub ready: Receiver<()>,
    pub seen: Vec<Event>,
}

impl Harness {
    pub fn new() -> Harness {
        let (tx, rx) = channel();
        let reactor = Reactor::start(Box::new(Channel(Mutex::new(tx)))).unwrap();
        Harness { reactor, ready: rx, seen: Vec::new() }
    }

    /// Takes batches until `done` holds for the events seen so far (bounded by 5 s).
    pub fn until(&mut self, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(20); // generous: CI machines may be loaded
        loop {
            while let Some(batch) = self.reactor.take_batch() {
                for (k, id, a, b) in batch.records() {
                    let (a_, b_) = (a as usize, b as usize);
                    let bytes = match k {
                        kind::DATA => batch.data[a_..a_ + b_].to_vec(),
                        kind::DATA_CHUNK => batch.chunks[a_].clone(),
                        kind::DATAGRAM => {
                            let (_, record_len) = address::decode(&batch.data, a_).unwrap();
                            batch.data[a_ + record_len..a_ + record_len + b_].to_vec()
                        }
                        kind::RELAY_ENDED => batch.data[a_..a_ + 16].to_vec(),
                        kind::PORT_DRAINED => batch.data[a_..a_ + 24].to_vec(),
                        kind::TLS_READY | kind::TLS_ERROR => batch.data[a_..a_ + b_].to_vec(),
                        _ => Vec::new(),
                    };
                    self.seen.push(Event { kind: k, id, a, bytes });
                }
            }
            if done(&self.seen) {
                return std::mem::take(&mut self.seen);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; saw {:?}", self.seen);
            let _ = self.ready.recv_timeout(left);
        }
    }

    pub fn data_of(events: &[Event], id: u32) -> Vec<u8> {
        events
            .iter()
            .filter(|e| (e.kind == kind::DATA || e.kind == kind::DATA_CHUNK) && e.id == id)
            .flat_map(|e| e.bytes.clone())
            .collect()
    }
}

pub fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}
