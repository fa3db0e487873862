//! The public face of the core: adopt descriptors, take batches, act on sockets by id.

use crate::batch::Batch;
use crate::datagram::Datagram;
use crate::event_loop::driver::HostedTurn;
use crate::event_loop::driver::Driver;
use crate::event_loop::engine::{Engine, WAKER};
use crate::sys::fd::{duplicate_cloexec, duplicate_nonblocking};
use crate::stream::listener::Listener;
use crate::event_loop::shared::Shared;
use crate::batch::counters::SharedCounters;
use crate::event_loop::CountingNotify;
use crate::proxy::PortRole;
use crate::stream::admission::Limits;
use crate::wire::{self, DatagramProxyStats, PortStats, Stats};
use crate::datagram_proxy::DatagramProxyConfig;
use crate::entry::Entry;
use crate::event_loop::registry::State;
use crate::relay::RelayOptions;
use crate::stream::tls::{Report, TlsLayer};
use crate::stream::Stream;
use crate::sys::ktls::KtlsSupport;
use crate::tls::{ClientTlsConfig, ServerName, ServerTlsConfig, TlsSession};
use crate::stream::state::Input;
use crate::sys::validate::{validate, AdoptError, Expect};
use crate::sys::sockopt::{self, SocketOption};
use crate::event_loop::Notify;
use mio::{Poll, Waker};
use socket2::{SockAddr, Socket};
use std::io;
use std::time::{Duration, Instant};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// Which side of TLS a connection takes in `Reactor::start_tls`.
#[derive(Debug, Clone)]
pub enum TlsRole {
    Server(ServerTlsConfig),
    /// The client side, sending and verifying this name.
    Client(ClientTlsConfig, ServerName<'static>),
}

/// What to adopt an fd as.
#[derive(Debug, Clone, Copy)]
pub enum Adopt {
    Listener,
    Connection,
    Datagram { max_packet: usize },
}

impl Adopt {
    /// The wire form the consumer uses (`ADOPT_*` in the binding): 1 listener, 2 connection,
    /// 3 datagram (with its maximum packet size).
    pub fn from_wire(what: u32, max_packet: usize) -> Option<Adopt> {
        match what {
            wire::ADOPT_LISTENER => Some(Adopt::Listener),
            wire::ADOPT_CONNECTION => Some(Adopt::Connection),
            wire::ADOPT_DATAGRAM => Some(Adopt::Datagram { max_packet }),
            _ => None,
        }
    }

    /// Checks `fd` for this kind of adoption without taking it over (the same checks `adopt` runs).
    pub fn check(self, fd: RawFd, family: i32) -> Result<(), AdoptError> {
        validate(fd, family, self.expect())
    }

    fn expect(self) -> Expect {
        match self {
            Adopt::Listener => Expect::Listener,
            Adopt::Connection => Expect::Connected,
            Adopt::Datagram { .. } => Expect::Datagram,
        }
    }
}


pub struct Reactor {
    shared: Arc<Shared>,
    /// Received descriptors handed to the consumer with a batch it is still dispatching.
    in_dispatch: Mutex<Vec<RawFd>>,
    /// Who runs the loop; None once closed.
    driver: Mutex<Option<Driver>>,
    /// The state's lock-free counters (wake-ups are counted here for a hosted reactor).
    counters: Arc<SharedCounters>,
}

fn unknown_id() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

impl Reactor {
    /// Creates the pollers and starts the I/O thread. Opens five descriptors (the main epoll and
    /// its eventfd, the relay epoll and its eventfd, and one held in reserve for running out of
    /// descriptors).
    pub fn start(notify: Box<dyn Notify>) -> io::Result<Reactor> {
        let (poll, shared) = Self::poller()?;
        let counters = shared.lock().entries.shared_counters.clone();
        let notify = Box::new(CountingNotify::new(notify, counters.clone()));
        let driver = Driver::thread(Engine::new(poll, shared.clone()), shared.clone(), notify)?;
        Ok(Reactor { shared, in_dispatch: Mutex::default(), driver: Mutex::new(Some(driver)), counters })
    }

    /// Creates the poller without a thread: the host watches `poll_fd()` for readability (e.g.
    /// with libuv's `uv_poll`) and calls `turn_hosted()`, on its own thread, each time it fires.
    pub fn start_hosted() -> io::Result<Reactor> {
        let (poll, shared) = Self::poller()?;
        let counters = shared.lock().entries.shared_counters.clone();
        let driver = Driver::hosted(Engine::new(poll, shared.clone()));
        Ok(Reactor { shared, in_dispatch: Mutex::default(), driver: Mutex::new(Some(driver)), counters })
    }

    fn poller() -> io::Result<(Poll, Arc<Shared>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(Shared::new(State::new()?, poll.registry().try_clone()?, waker));
        Ok((poll, shared))
    }

    fn driver(&self) -> MutexGuard<'_, Option<Driver>> {
        self.driver.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epoll fd the host watches (see `Driver::poll_fd`); None once closed.
    pub fn poll_fd(&self) -> Option<RawFd> {
        self.driver().as_ref().map(Driver::poll_fd)
    }

    /// One non-blocking turn on the host's thread (see `Driver::turn_hosted`). A closed reactor
    /// has nothing to do.
    pub fn turn_hosted(&self) -> io::Result<HostedTurn> {
        let turn = match &mut *self.driver() {
            Some(driver) => driver.turn_hosted(&self.shared)?,
            None => HostedTurn { announce: false, retry_after: None },
        };
        if turn.announce {
            // The host calls the consumer for this announcement: one wake-up, as an announcement
            // from the I/O thread is (see `CountingNotify`).
            self.counters.woke();
        }
        Ok(turn)
    }

    /// A threaded reactor whose host's loop will also watch `poll_fd()` and call `turn_hosted()`
    /// (see `Driver::attach_host`).
    pub fn attach_host(&self) {
        if let Some(driver) = &*self.driver() {
            driver.attach_host();
        }
    }

    /// Validates `fd` (open, socket, type, family, listening/connected: see `validate`), duplicates it and starts serving the duplicate.
    pub fn adopt(&self, fd: RawFd, family: i32, what: Adopt) -> Result<u32, AdoptError> {
        validate(fd, family, what.expect())?;
        let sock = duplicate_nonblocking(fd)?;
        let entry = match what {
            Adopt::Listener => Entry::Listener(Box::new(Listener::new(sock))),
            Adopt::Connection => Entry::Stream(Stream::new(sock, family == libc::AF_UNIX)),
            Adopt::Datagram { max_packet } => Entry::Datagram(Datagram::new(sock, max_packet)?),
        };
        let id = self.shared.lock().insert(&self.shared.registry, entry)?;
        self.shared.wake(); // the loop looks at the new socket once
        Ok(id)
    }

    /// Adopts a listening socket (checked as `adopt` checks it) with admission limits and a role:
    /// PROXY headers read in the core, and/or proxying to upstreams in the core (see `proxy`).
    pub fn adopt_listener(&self, fd: RawFd, family: i32, limits: Limits, role: PortRole) -> Result<u32, AdoptError> {
        validate(fd, family, Expect::Listener)?;
        let sock = duplicate_nonblocking(fd)?;
        let id = self.shared.lock().insert_port(&self.shared.registry, Entry::Listener(Box::new(Listener::with(sock, limits, role))))?;
        self.shared.wake();
        Ok(id)
    }

    /// Adopts a datagram socket (checked as `adopt` checks one) as a datagram proxy: each client
    /// gets a session with its own connected upstream socket, all served in the core (see
    /// `datagram_proxy`).
    pub fn adopt_datagram_proxy(&self, fd: RawFd, family: i32, config: DatagramProxyConfig) -> Result<u32, AdoptError> {
        validate(fd, family, Expect::Datagram)?;
        let sock = duplicate_nonblocking(fd)?;
        let id = self.shared.lock().insert_datagram_proxy(&self.shared.registry, sock, config)?;
        self.shared.wake();
        Ok(id)
    }

    /// The consumer's answers to DATAGRAM_ROUTE records of `port`: for each waiting client (by its
    /// token), an upstream, or None to refuse it.
    pub fn route_datagrams(&self, port: u32, answers: impl IntoIterator<Item = (u32, Option<SockAddr>)>) {
        self.act(|st, reg| {
            for (token, to) in answers {
                st.route_datagrams(reg, port, token, to);
            }
        })
    }

    /// Stops datagram proxy `id` reading (see `State::stop_datagram_proxy`): its sessions go on
    /// until they end; then a DATAGRAM_PROXY_CLOSED record. False when it is not one.
    pub fn stop_datagram_proxy(&self, id: u32) -> bool {
        self.act(|st, reg| st.stop_datagram_proxy(reg, id))
    }

    /// A datagram proxy's figures (see `wire::DatagramProxyStats`); after its close, its final
    /// figures, once; then None.
    pub fn datagram_proxy_stats(&self, id: u32) -> Option<DatagramProxyStats> {
        self.shared.lock().datagram_proxy_stats(id)
    }

    /// The consumer's answers to ROUTE records: for each session, an upstream, or None to refuse.
    pub fn route(&self, answers: impl IntoIterator<Item = (u32, Option<SockAddr>)>) {
        self.act(|st, reg| {
            for (session, to) in answers {
                st.route(reg, session, to);
            }
        })
    }

    /// A listening port's figures, and its upstreams' connect failures (a proxy port's); None for
    /// an id that is not a listening port.
    /// After a drain ended, the port's last figures, once.
    pub fn port_stats(&self, id: u32) -> Option<(PortStats, Vec<u64>)> {
        let mut st = self.shared.lock();
        match st.entries.get(id) {
            Some(Entry::Listener(l)) => Some((l.current_stats(), l.balancer.failures.clone())),
            _ => st.final_port_stats.remove(&id),
        }
    }

    /// Drains listening port `id` (see `event_loop::drain`): a PORT_DRAINED record reports its end.
    /// False when `id` is not a listening port.
    pub fn drain(&self, id: u32, deadline: Duration, idle_after: Duration) -> bool {
        let at = Instant::now().checked_add(deadline).unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400));
        self.act(|st, reg| st.drain(reg, id, at, idle_after))
    }

    /// Starts a non-blocking connect to `to` (from `bind` when given) and returns the new
    /// connection's id. Its completion is a CONNECTED event (or CLOSED with the errno); a connect the
    /// kernel refuses at once (a UNIX path that does not exist, ...) is an error here.
    pub fn connect(&self, to: &SockAddr, bind: Option<&SockAddr>) -> io::Result<u32> {
        self.start_connect(to, bind, None)
    }

    /// `connect` with TLS: the client's handshake runs in the core once TCP is up, and the
    /// connection is reported (TLS_READY, then CONNECTED) only once it is done; a failed one is
    /// TLS_ERROR then CLOSED. `server_name` is sent (a DNS name) and verified.
    pub fn connect_tls(&self, to: &SockAddr, bind: Option<&SockAddr>, config: &ClientTlsConfig, server_name: ServerName<'static>) -> io::Result<u32> {
        let session = TlsSession::client(config, server_name).map_err(io::Error::other)?;
        let layer = TlsLayer::new(session, config.handshake_timeout, Report::Connected);
        self.start_connect(to, bind, Some(Box::new(layer)))
    }

    /// The one non-blocking connect behind `connect` and `connect_tls`: a close-on-exec socket,
    /// bound to `bind` when given, connecting (EINPROGRESS is the normal answer), registered as a
    /// connecting stream with its TLS layer, if any.
    fn start_connect(&self, to: &SockAddr, bind: Option<&SockAddr>, tls: Option<Box<TlsLayer>>) -> io::Result<u32> {
        let sock = Socket::new(to.domain(), socket2::Type::STREAM.nonblocking().cloexec(), None)?;
        if let Some(local) = bind {
            sock.bind(local)?;
        }
        match sock.connect(to) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let mut stream = Stream::connecting(sock, to.domain() == socket2::Domain::UNIX);
        stream.tls = tls;
        let id = self.shared.lock().insert(&self.shared.registry, Entry::Stream(stream))?;
        self.shared.wake();
        Ok(id)
    }

    /// Twisted's `startTLS` on connection `id`: from now on its bytes go through a TLS session
    /// (`server`: the server side with that config; else the client side, sending and verifying
    /// `server_name`). Bytes written before the call leave in the clear first; `held` are bytes
    /// read before it that the consumer has not delivered (they are the peer's first TLS
    /// records). The handshake runs in the core; TLS_READY reports its end (TLS_ERROR then
    /// CLOSED a failure). Returns the connection's state bits. EBADF: unknown id; EINVAL: it
    /// cannot start TLS now (see `State::start_tls`).
    pub fn start_tls(&self, id: u32, role: TlsRole, held: &[&[u8]]) -> io::Result<u32> {
        let (session, timeout) = match role {
            TlsRole::Server(config) => (TlsSession::server(&config), config.handshake_timeout),
            TlsRole::Client(config, name) => (TlsSession::client(&config, name), config.handshake_timeout),
        };
        let layer = TlsLayer::new(session.map_err(io::Error::other)?, timeout, Report::Started);
        let bits = self.shared.lock().start_tls(id, layer, held)?;
        self.shared.wake();
        Ok(bits)
    }

    /// Replaces a TLS port's certificates (and other TLS options) for handshakes from now on;
    /// sessions established, and handshakes under way, keep theirs. EBADF: not a listening port;
    /// EINVAL: a port without TLS.
    pub fn set_port_tls(&self, id: u32, config: ServerTlsConfig) -> io::Result<()> {
        let st = self.shared.lock();
        match st.entries.get(id) {
            Some(Entry::Listener(l)) => match &l.role.tls {
                Some(tls) => {
                    tls.replace(config);
                    Ok(())
                }
                None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            },
            _ => Err(unknown_id()),
        }
    }

    /// Whether this kernel can take TLS records over (kTLS), and why not (probed once).
    pub fn ktls_support() -> &'static KtlsSupport {
        crate::sys::ktls::support()
    }

    /// Starts relaying between connections `a` and `b` inside the core (see `relay`); returns the
    /// relay's id. `held_a`/`held_b`: bytes read from each that the consumer still holds (they go
    /// out first). EINVAL: the pair cannot relay; ENOENT: one of them is gone.
    pub fn relay(&self, a: u32, b: u32, held_a: &[&[u8]], held_b: &[&[u8]], options: RelayOptions) -> io::Result<u32> {
        let (rid, own_poller) = {
            let mut st = self.shared.lock();
            (st.start_relay(&self.shared.registry, a, b, held_a, held_b, options)?, st.relays.has_poller())
        };
        // With a relay poller of its own, starting the relay woke that poller; the main loop has
        // nothing to do for it (a wake-up there would only cost the host and the I/O thread a turn).
        if !own_poller {
            self.shared.wake();
        }
        Ok(rid)
    }

    /// Bytes moved a→b and b→a so far; None once it ended.
    pub fn relay_counts(&self, rid: u32) -> Option<(u64, u64)> {
        self.shared.lock().relays.counts(rid)
    }

    /// Sends a duplicate of `fd` with the first byte of the next write on connection `id` (see
    /// `Stream::send_file_descriptor`).
    pub fn send_file_descriptor(&self, id: u32, fd: RawFd) -> io::Result<()> {
        let mut st = self.shared.lock();
        st.entries.stream(id).ok_or_else(unknown_id)?.send_file_descriptor(fd)
    }

    /// Pipes kept for the next relay (their reuse is what keeps a relay at no new fds).
    pub fn pooled_pipes(&self) -> usize {
        self.shared.lock().relays.pooled_pipes()
    }

    /// The next batch, or None: then the next announcement says when there is more.
    pub fn take_batch(&self) -> Option<Batch> {
        let mut out = Batch::default();
        self.swap_batch(&mut out, &mut Vec::new()).then_some(out)
    }

    /// Takes the next batch by exchanging it with `out`, which must be empty (its buffers become
    /// the loop's next batch, so nothing is allocated or copied under the lock). Read buffers in
    /// `recycled` go back to the loop for reuse. False when there is no batch: then the next
    /// announcement says when there is more.
    pub fn swap_batch(&self, out: &mut Batch, recycled: &mut Vec<Vec<u8>>) -> bool {
        let mut st = self.shared.lock();
        st.batch.recycle(recycled.drain(..));
        if st.batch.is_empty() {
            st.in_flight = false;
            return false;
        }
        let events = st.batch.len();
        st.entries.counters.batch_taken(events);
        st.batch.swap_contents(out);
        if std::mem::take(&mut st.stalled) {
            self.shared.wake();
        }
        true
    }

    /// Runs `f` on the state and wakes the loop if `f` left events to announce.
    fn act<R>(&self, f: impl FnOnce(&mut State, &mio::Registry) -> R) -> R {
        let mut st = self.shared.lock();
        let r = f(&mut st, &self.shared.registry);
        if st.should_announce() || st.entries.has_news() {
            self.shared.wake();
        }
        r
    }

    /// Writes to a stream; returns the bytes still queued. Unknown ids (closed) drop the bytes.
    pub fn write(&self, id: u32, bytes: &[u8]) -> usize {
        self.act(|st, reg| st.write(reg, id, &[bytes]))
    }

    pub fn write_vectored(&self, id: u32, chunks: &[&[u8]]) -> usize {
        self.act(|st, reg| st.write(reg, id, chunks))
    }

    pub fn buffer_size(&self, id: u32) -> usize {
        self.shared.lock().entries.stream(id).map_or(0, |s| s.buffered())
    }

    /// The connection's state as `stream_state::bits` (CLOSED for an unknown id).
    pub fn stream_state(&self, id: u32) -> u32 {
        self.shared.lock().stream_bits(id)
    }

    /// Applies a state input from the consumer; returns the state afterwards.
    pub fn stream_input(&self, id: u32, input: Input) -> u32 {
        let mut st = self.shared.lock();
        let bits = st.stream_input(&self.shared.registry, id, input);
        // A resumed stream with bytes waiting was deferred: the loop must come back to it.
        if (st.is_deferred(id) && matches!(input, Input::Resume | Input::LoseConnection)) || st.should_announce() || st.entries.has_news() {
            self.shared.wake();
        }
        bits
    }

    pub fn abort(&self, id: u32) {
        self.act(|st, reg| st.abort(reg, id))
    }

    /// Closes the reactor's duplicate without shutdown(): stops a listening or datagram port (the
    /// caller's fd keeps listening or receiving) or lets go of a connection (queued bytes are
    /// discarded; the caller's fd still holds the connection).
    /// Returns how many connections this listener accepted that are still in the batch JS has not
    /// taken: they will be delivered (as accepted connections) after the stop.
    pub fn close_port(&self, id: u32) -> usize {
        self.act(|st, reg| {
            st.remove(reg, id);
            st.batch.records().filter(|&(k, i, _, _)| k == crate::wire::kind::ACCEPT && i == id).count()
        })
    }

    /// Runs `f` on the socket behind `id` (EBADF if there is none).
    pub fn with_socket<R>(&self, id: u32, f: impl FnOnce(&Socket) -> io::Result<R>) -> io::Result<R> {
        let st = self.shared.lock();
        let entry = st.entries.get(id).ok_or_else(unknown_id)?;
        f(entry.socket())
    }

    /// A new close-on-exec descriptor of the socket behind `id`, owned by the caller (as Go's
    /// `Listener.File()`): a port whose adopting fd was closed can still be handed on (handoff,
    /// the fd store). Every entry is in the one state, whichever poller it is registered with (a
    /// proxy port's is the relay poller's), so the lock is all it takes. EBADF for an id the core
    /// does not hold; EMFILE/ENFILE when no descriptor is left.
    pub fn duplicate_socket(&self, id: u32) -> io::Result<OwnedFd> {
        self.with_socket(id, |s| duplicate_cloexec(s.as_raw_fd()))
    }

    pub fn local_address(&self, id: u32) -> io::Result<SockAddr> {
        self.with_socket(id, |s| s.local_addr())
    }

    pub fn peer_address(&self, id: u32) -> io::Result<SockAddr> {
        self.with_socket(id, |s| s.peer_addr())
    }

    /// Sets a named socket option (`sys::sockopt`) on the duplicate behind `id`. The socket is
    /// shared with any other descriptor of it (the caller's, if kept): they see the change too.
    /// EBADF for an id the core does not hold; otherwise what `sockopt::set` answers.
    pub fn set_socket_option(&self, id: u32, option: SocketOption, value: &sockopt::Value) -> io::Result<()> {
        self.with_socket(id, |s| sockopt::set(s, option, value))
    }

    /// What the kernel reports for a named socket option of the socket behind `id` (EBADF for an
    /// id the core does not hold).
    pub fn socket_option(&self, id: u32, option: SocketOption) -> io::Result<sockopt::Value> {
        self.with_socket(id, |s| sockopt::get(s, option))
    }

    /// The sending side of a datagram port, for the consumer's thread to keep.
    pub fn outbox(&self, id: u32) -> io::Result<crate::datagram::outbox::Outbox> {
        let mut st = self.shared.lock();
        let d = st.entries.datagram(id).ok_or_else(unknown_id)?;
        Ok(crate::datagram::outbox::Outbox::new(d.sock.clone(), d.family))
    }

    /// Reports errors of queued sends as the port's receive errors would be.
    pub fn report_datagram_errors(&self, id: u32, errnos: &[i32]) {
        self.act(|st, _| {
            for &errno in errnos {
                st.batch.push(crate::wire::kind::DATAGRAM_ERROR, id, errno as u32, 0);
            }
        })
    }

    /// The core's figures (see `stats::Stats`); the consumer adds its datagram sends.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    pub fn dropped_datagrams(&self, id: u32) -> u64 {
        self.shared.lock().entries.datagram(id).map_or(0, |d| d.dropped_total())
    }

    /// Descriptors the consumer was handed with the batch it is dispatching now.
    pub fn fds_in_dispatch(&self, fds: Vec<RawFd>) {
        self.in_dispatch.lock().unwrap_or_else(|p| p.into_inner()).extend(fds);
    }

    /// The consumer dispatched its batch: the descriptors it was handed are its own (delivered to
    /// protocols, or closed by it).
    pub fn fds_settled(&self) {
        self.in_dispatch.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The consumer is being torn down (its thread's environment ends) in the middle of a batch:
    /// nothing of it can use the descriptors it was handed any more, so they are closed here.
    pub fn close_unsettled_fds(&self) {
        for fd in std::mem::take(&mut *self.in_dispatch.lock().unwrap_or_else(|p| p.into_inner())) {
            crate::sys::fd::close_owned(fd);
        }
    }

    /// Stops the loop, stops the driver (joins the I/O thread, or closes the hosted poller: the host
    /// must have stopped watching it) and closes every socket. Idempotent.
    pub fn close(&self) {
        self.shared.lock().stopping = true;
        self.shared.wake();
        let driver = self.driver().take();
        if let Some(d) = driver {
            d.stop();
        }
        let mut st = self.shared.lock();
        st.clear(&self.shared.registry);
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.close();
    }
}
