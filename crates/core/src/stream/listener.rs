//! A listening stream socket: accepts until the kernel's queue is empty, surviving EMFILE.

use super::admission::{Admission, Gate, Limits, Ticket};
use crate::proxy::balance::Balancer;
use crate::proxy::{PortRole, Route};
use crate::wire::PortStats;
use crate::batch::Batch;
use crate::service::{SessionStep, Step};
use std::time::Instant;
use crate::sys::fd::accept_nonblocking;
use socket2::{SockAddr, Socket};
use std::fs::File;
use std::io;

/// Accepts per listener per loop turn before other sockets get a go.
const ACCEPTS_PER_TURN: usize = 64;

#[derive(Debug)]
pub struct Listener {
    pub sock: Socket,
    /// An edge said connections may be waiting and no accept has drained them since.
    pub pending: bool,
    /// An AF_UNIX listener: its connections can pass descriptors.
    pub unix: bool,
    pub admission: Admission,
    /// What it does with what it accepts beyond handing it over (PROXY headers, proxying).
    pub role: PortRole,
    /// Its figures (levels such as `connections_active` are filled in when read: `stats`).
    pub stats: PortStats,
    /// A proxy port's choice of upstream (empty otherwise).
    pub balancer: Balancer,
    /// Set while the port drains: it accepts nothing more.
    pub drain: Option<Drain>,
}

/// A draining port's deadline and counts (see `event_loop::drain`).
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub deadline: Instant,
    /// Connections open when the drain began.
    pub started_with: u64,
    pub idle_closed: u64,
    pub closed_at_deadline: u64,
}

/// A connection this listener accepted and admitted, for the registry to register.
pub struct Admitted {
    pub sock: Socket,
    pub peer: SockAddr,
    pub ticket: Ticket,
}

/// What one accept produced.
enum Accepted {
    Connection(Socket, SockAddr),
    /// The queue is empty (or the budget is spent: `more` is then true).
    Stop { more: bool },
    /// Out of descriptors and none could be freed: retry later.
    OutOfDescriptors,
}

/// One descriptor held in reserve so that, out of descriptors, a waiting client can still be
/// accepted and closed cleanly instead of staying queued (and the edge never re-firing).
#[derive(Debug)]
pub struct SpareFd(Option<File>);

impl SpareFd {
    pub fn open() -> io::Result<SpareFd> {
        Ok(SpareFd(Some(File::open("/dev/null")?)))
    }

    /// Takes the reserve back if it was lost. With the loop on its own thread, another thread
    /// (JS opening a file) can take the descriptor between `shed_one`'s close and reopen; without
    /// this, the listener would never shed again and clients would wait in the backlog.
    fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = File::open("/dev/null").ok();
        }
    }

    /// Frees the reserve, accepts and closes one client, then takes the reserve back.
    /// Returns false when nothing could be done (no reserve, or the accept failed again).
    fn shed_one(&mut self, listener: &Socket) -> bool {
        if self.0.take().is_none() {
            return false;
        }
        let shed = accept_nonblocking(as_raw(listener)).is_ok(); // dropped at once: a clean close
        self.0 = File::open("/dev/null").ok();
        shed
    }
}

impl Listener {
    pub fn new(sock: Socket) -> Listener {
        Listener::with(sock, Limits::default(), PortRole::default())
    }

    pub fn with(sock: Socket, limits: Limits, role: PortRole) -> Listener {
        let unix = sock.domain().map(|d| d == socket2::Domain::UNIX).unwrap_or(false);
        let upstreams = match role.proxy.as_deref().map(|p| &p.route) {
            Some(Route::Upstreams(list, _)) => list.len(),
            _ => 0,
        };
        let admission = Admission::new(limits);
        Listener { sock, pending: true, unix, admission, role, stats: PortStats::default(), balancer: Balancer::new(upstreams), drain: None }
    }

    /// Accepts while connections wait, up to the turn's budget, into `accepted` (the registry
    /// registers them and reports each), shedding clients while out of descriptors. A full batch
    /// stops it before the first accept: the clients wait in the kernel's backlog.
    ///
    /// Admission first: at `max_connections` it stops (a closing connection resumes it, see
    /// `Entries::remove`); out of accept tokens it comes back when one is due; a client its source
    /// may not add is accepted and closed at once (counted).
    pub fn service(&mut self, batch: &Batch, spare: &mut SpareFd, accepted: &mut Vec<Admitted>) -> Step {
        if let Some(d) = self.drain {
            // Draining: nothing more is accepted; the deadline is the only thing left to do.
            return if Instant::now() >= d.deadline { Step::Session(SessionStep::DrainDeadline) } else { Step::WakeAt(d.deadline) };
        }
        if !self.pending {
            return Step::Idle;
        }
        if batch.is_full() {
            return Step::More;
        }
        // The reserve before any client: a free descriptor goes to it first.
        spare.restore();
        let mut count = 0;
        loop {
            match self.admission.gate() {
                Gate::Open => {}
                Gate::Full => return Step::Idle,
                Gate::Until(at) => return Step::WakeAt(at),
            }
            match self.accept(count, spare) {
                Accepted::Connection(sock, peer) => {
                    count += 1;
                    self.stats.connections_accepted += 1;
                    // Refused by its source: dropped here, the client sees a clean close.
                    if let Ok(ticket) = self.admission.admit(&peer) {
                        accepted.push(Admitted { sock, peer, ticket });
                    }
                }
                Accepted::Stop { more: true } => return Step::More,
                Accepted::Stop { more: false } => return Step::Idle,
                Accepted::OutOfDescriptors => return Step::RetryLater,
            }
        }
    }

    /// Accepts the next connection, shedding clients while out of descriptors.
    fn accept(&mut self, count: usize, spare: &mut SpareFd) -> Accepted {
        if count >= ACCEPTS_PER_TURN {
            return Accepted::Stop { more: true };
        }
        loop {
            match accept_nonblocking(as_raw(&self.sock)) {
                Ok((sock, addr)) => return Accepted::Connection(sock, addr),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => {
                        self.pending = false;
                        return Accepted::Stop { more: false };
                    }
                    Some(libc::EINTR) | Some(libc::ECONNABORTED) | Some(libc::EPROTO) => continue,
                    Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM) => {
                        if !spare.shed_one(&self.sock) {
                            return Accepted::OutOfDescriptors;
                        }
                    }
                    // Anything else (e.g. the socket stopped listening): nothing to accept now.
                    _ => {
                        self.pending = false;
                        return Accepted::Stop { more: false };
                    }
                },
            }
        }
    }
}

impl Listener {
    /// Its figures now.
    pub fn current_stats(&self) -> PortStats {
        let refused = self.admission.refused;
        PortStats {
            connections_active: self.admission.active as u64,
            refused_per_source: refused.per_source,
            refused_table_full: refused.table_full,
            paused_at_max: refused.paused_at_max,
            paused_for_rate: refused.paused_for_rate,
            upstream_connect_failures: self.balancer.failures.iter().sum(),
            ..self.stats
        }
    }
}

fn as_raw(sock: &Socket) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    sock.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_reserve_is_taken_back_before_the_next_accept() {
        let sock = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        sock.listen(8).unwrap();
        sock.set_nonblocking(true).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();

        let mut listener = Listener::new(sock);
        let mut spare = SpareFd(None); // as after a race lost it
        let batch = Batch::with_capacity();
        let mut accepted = Vec::new();
        listener.service(&batch, &mut spare, &mut accepted);
        assert!(spare.0.is_some(), "the reserve is held again");
        assert_eq!(accepted.len(), 1, "and the waiting client was accepted");
    }
}
