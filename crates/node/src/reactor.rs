//! `NativeReactor`: the JS handle on one core reactor. Thin: argument plumbing and conversions;
//! every socket operation is the core's.

use crate::error::{coded_error, os_error};
use crate::hosted::HostedDriver;
use crate::notify::{BatchReady, TsfnNotify};
use crate::teardown;
use std::cell::RefCell;
use std::rc::Rc;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::socket2::{SockAddr, Socket};
use reactor_core::outbox::{Outbox, SendError};
use reactor_core::batch::Batch;
use reactor_core::{address, Adopt, AdoptError, Reactor};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// An adopt call's outcome: `id`, or the reason it was refused (see js/native.ts).
#[napi(object)]
#[derive(Default)]
pub struct AdoptResult {
    pub id: Option<u32>,
    pub error: Option<String>,
    pub errno: Option<i32>,
    pub socket_type: Option<i32>,
    pub actual_family: Option<i32>,
}

/// How batches reach JS: announced from the I/O thread through a threadsafe function, or by the
/// hosted driver calling JS directly from Node's loop.
enum Delivery {
    Threaded(Arc<BatchReady>),
    Hosted { on_ready: FunctionRef<(), ()>, driver: Rc<RefCell<Option<HostedDriver>>> },
}

#[napi]
pub struct NativeReactor {
    delivery: Delivery,
    core: Option<Arc<Reactor>>,
    /// Whether JS wants Node's loop held open (applied to the driver once there is one).
    held: bool,
    closed: bool,
    /// Datagram ports' sending sides, kept on the JS thread so sends take no lock.
    outboxes: HashMap<u32, Outbox>,
    /// Between a takeBatch that returned a batch and the next takeBatch: JS is handling events, so
    /// datagrams it writes are queued and leave together (one sendmmsg) when it asks for more.
    dispatching: bool,
    /// The large reads and the events of the batch last taken, when JS asks for them.
    chunks: Vec<Vec<u8>>,
    /// Read buffers already copied into JS, to give back to the core for reuse.
    recycled: Vec<Vec<u8>>,
    /// The batch last taken (its buffers go back to the core with the next take).
    taken: Batch,
    overflow: Vec<u32>,
}

fn refused(err: AdoptError) -> AdoptResult {
    let mut r = AdoptResult::default();
    match err {
        AdoptError::SocketType(t) => {
            r.error = Some("ERR_SOCKET_TYPE".into());
            r.socket_type = Some(t);
        }
        AdoptError::Family(f) => {
            r.error = Some("ERR_ADDRESS_FAMILY".into());
            r.actual_family = Some(f);
        }
        other => {
            let errno = other.errno().unwrap_or(libc::EIO);
            r.error = Some(reactor_core::errno::code(errno).to_string());
            r.errno = Some(errno);
        }
    }
    r
}

fn closed_reactor() -> Error {
    coded_error("ERR_REACTOR_CLOSED", "the reactor is closed")
}

fn interface_index(name: &str) -> Result<u32> {
    address::interface_index(name).map_err(|e| os_error(e, "if_nametoindex"))
}

impl NativeReactor {
    fn core(&self) -> Result<&Reactor> {
        match (&self.core, self.closed) {
            (Some(core), false) => Ok(core),
            (_, true) => Err(closed_reactor()),
            (None, false) => Err(os_error(io::Error::from_raw_os_error(libc::EBADF), "reactor")),
        }
    }

    fn adopt(&mut self, env: &Env, fd: i32, family: i32, what: Adopt) -> Result<AdoptResult> {
        if self.closed {
            return Err(closed_reactor());
        }
        if self.core.is_none() {
            // Validate before anything is created, so a refused first call opens nothing.
            let expect = match what {
                Adopt::Listener => reactor_core::Expect::Listener,
                Adopt::Connection => reactor_core::Expect::Connected,
                Adopt::Datagram { .. } => reactor_core::Expect::Datagram,
            };
            if let Err(e) = reactor_core::validate::validate(fd, family, expect) {
                return Ok(refused(e));
            }
            self.core = Some(self.start_core(env)?);
        }
        match self.core()?.adopt(fd, family, what) {
            Ok(id) => Ok(AdoptResult { id: Some(id), ..Default::default() }),
            Err(e) => Ok(refused(e)),
        }
    }

    fn start_core(&mut self, env: &Env) -> Result<Arc<Reactor>> {
        let started = |e| os_error(e, "epoll_create");
        match &self.delivery {
            Delivery::Threaded(ready) => {
                let core = Arc::new(Reactor::start(Box::new(TsfnNotify::new(ready.clone()))).map_err(started)?);
                let weak = Arc::downgrade(&core);
                teardown::at_exit(env, move || {
                    if let Some(core) = weak.upgrade() {
                        core.close();
                    }
                })?;
                Ok(core)
            }
            Delivery::Hosted { on_ready, driver } => {
                let core = Arc::new(Reactor::start_hosted().map_err(started)?);
                let hosted = HostedDriver::start(env, core.clone(), &on_ready.borrow_back(env)?)?;
                hosted.hold(self.held);
                *driver.borrow_mut() = Some(hosted);
                let (weak, driver) = (Arc::downgrade(&core), driver.clone());
                teardown::at_exit(env, move || {
                    // Stop watching before the core closes the fd being watched.
                    if let Some(d) = driver.borrow_mut().take() {
                        d.stop();
                    }
                    if let Some(core) = weak.upgrade() {
                        core.close();
                    }
                })?;
                Ok(core)
            }
        }
    }

    fn hold(&mut self, env: &Env, on: bool) -> Result<()> {
        self.held = on;
        match &self.delivery {
            Delivery::Threaded(ready) => ready.hold(env, on),
            Delivery::Hosted { driver, .. } => {
                if let Some(d) = driver.borrow().as_ref() {
                    d.hold(on);
                }
                Ok(())
            }
        }
    }

    /// The port's sending side, made on first use (one lock), then kept on this thread.
    fn outbox(&mut self, id: u32) -> Result<&mut Outbox> {
        if !self.outboxes.contains_key(&id) {
            let outbox = self.core()?.outbox(id).map_err(|e| os_error(e, "send"))?;
            self.outboxes.insert(id, outbox);
        }
        Ok(self.outboxes.get_mut(&id).expect("inserted above"))
    }

    fn datagram_family(&mut self, id: u32) -> Result<i32> {
        Ok(self.outbox(id)?.family())
    }

    /// Sends what JS queued while handling the last batch; refusals go back as events.
    fn flush_datagrams(&mut self) {
        let Some(core) = &self.core else { return };
        for (id, outbox) in self.outboxes.iter_mut() {
            if outbox.has_queued() {
                let errors = outbox.flush();
                if !errors.is_empty() {
                    core.report_datagram_errors(*id, &errors);
                }
            }
        }
    }
}

#[napi]
impl NativeReactor {
    /// `on_ready` is called (no arguments) on the JS thread when a batch can be taken. `thread`
    /// (default true) runs the loop on its own I/O thread; false lets Node's loop drive it.
    /// Nothing is opened here: the poller starts with the first successful adoption.
    #[napi(constructor)]
    pub fn new(env: Env, on_ready: Function<(), ()>, thread: Option<bool>) -> Result<Self> {
        let delivery = if thread.unwrap_or(true) {
            Delivery::Threaded(Arc::new(BatchReady::new(&env, on_ready)?))
        } else {
            Delivery::Hosted { on_ready: on_ready.create_ref()?, driver: Rc::new(RefCell::new(None)) }
        };
        Ok(NativeReactor { delivery, core: None, held: false, closed: false, outboxes: HashMap::new(), dispatching: false, chunks: Vec::new(), recycled: Vec::new(), taken: Batch::default(), overflow: Vec::new() })
    }

    #[napi]
    pub fn adopt_listener(&mut self, env: Env, fd: i32, family: i32) -> Result<AdoptResult> {
        self.adopt(&env, fd, family, Adopt::Listener)
    }

    #[napi]
    pub fn adopt_connection(&mut self, env: Env, fd: i32, family: i32) -> Result<AdoptResult> {
        self.adopt(&env, fd, family, Adopt::Connection)
    }

    #[napi]
    pub fn adopt_datagram(&mut self, env: Env, fd: i32, family: i32, max_packet_size: u32) -> Result<AdoptResult> {
        self.adopt(&env, fd, family, Adopt::Datagram { max_packet: max_packet_size as usize })
    }

    /// Takes the next batch: its events are copied into `events` (JS's own reusable array) after a
    /// header `[records, chunks]`, and its data comes back as a fresh buffer; null when there is no
    /// batch. A batch with more records than `events` holds sets `records` to u32::MAX: JS then
    /// takes them with `takeOverflowEvents()`. Large reads: `takeChunks()`.
    #[napi]
    pub fn take_batch<'env>(&mut self, env: &'env Env, mut events: Uint32ArraySlice) -> Result<Option<BufferSlice<'env>>> {
        self.flush_datagrams();
        let Some(core) = self.core.clone() else { return Ok(None) };
        let batch = &mut self.taken;
        batch.clear();
        let taken = core.swap_batch(batch, &mut self.recycled);
        self.dispatching = taken;
        if !taken {
            return Ok(None);
        }
        // SAFETY: JS is blocked in this call, so nothing else touches the array meanwhile.
        let out = unsafe { events.as_mut() };
        if out.len() >= 2 {
            let records = batch.events.len() / reactor_core::batch::STRIDE;
            if out.len() >= 2 + batch.events.len() {
                out[0] = records as u32;
                out[2..2 + batch.events.len()].copy_from_slice(&batch.events);
            } else {
                out[0] = u32::MAX;
                self.overflow = batch.events.clone();
            }
            out[1] = batch.chunks.len() as u32;
        }
        self.chunks = std::mem::take(&mut batch.chunks);
        BufferSlice::copy_from(env, &batch.data).map(Some)
    }

    /// The events of the last batch when they did not fit JS's array.
    #[napi]
    pub fn take_overflow_events(&mut self) -> Uint32Array {
        Uint32Array::new(std::mem::take(&mut self.overflow))
    }

    /// The large reads of the last batch, each in the buffer it was read into.
    #[napi]
    pub fn take_chunks<'env>(&mut self, env: &'env Env) -> Result<Vec<BufferSlice<'env>>> {
        // Copied into buffers V8 allocates, so its GC accounts for them as for Node's own reads.
        let copies = self.chunks.iter().map(|c| BufferSlice::copy_from(env, c)).collect();
        self.recycled.append(&mut self.chunks);
        copies
    }

    #[napi]
    pub fn write(&self, id: u32, data: Uint8ArraySlice) -> u32 {
        self.core.as_ref().map_or(0, |c| c.write(id, data.as_ref()) as u32)
    }

    #[napi]
    pub fn writev(&self, id: u32, chunks: Vec<Uint8ArraySlice>) -> u32 {
        let slices: Vec<&[u8]> = chunks.iter().map(|c| c.as_ref()).collect();
        self.core.as_ref().map_or(0, |c| c.write_vectored(id, &slices) as u32)
    }

    #[napi]
    pub fn buffer_size(&self, id: u32) -> u32 {
        self.core.as_ref().map_or(0, |c| c.buffer_size(id) as u32)
    }

    #[napi]
    pub fn pause_reading(&self, id: u32) {
        if let Some(c) = &self.core {
            c.pause(id)
        }
    }

    #[napi]
    pub fn resume_reading(&self, id: u32) {
        if let Some(c) = &self.core {
            c.resume(id)
        }
    }

    #[napi]
    pub fn lose_connection(&self, id: u32) -> bool {
        self.core.as_ref().is_none_or(|c| c.lose_connection(id))
    }

    #[napi]
    pub fn shutdown_write(&self, id: u32) -> bool {
        self.core.as_ref().is_none_or(|c| c.shutdown_write(id))
    }

    #[napi]
    pub fn abort(&self, id: u32) {
        if let Some(c) = &self.core {
            c.abort(id)
        }
    }

    /// Closes the duplicate (no shutdown). For a listening port, returns how many connections it
    /// accepted that JS has not been given yet (they still arrive, as EV_ACCEPT records).
    #[napi]
    pub fn close_port(&mut self, id: u32) -> u32 {
        // Datagrams written before the stop still leave (a write that did not throw is sent), then
        // the outbox's share of the socket goes, so that the close is the core's.
        if let Some(mut outbox) = self.outboxes.remove(&id) {
            outbox.flush();
        }
        self.core.as_ref().map_or(0, |c| c.close_port(id) as u32)
    }

    #[napi]
    pub fn local_address(&self, id: u32) -> Option<Buffer> {
        let addr = self.core.as_ref()?.local_address(id).ok()?;
        Some(address::record(&addr).into())
    }

    #[napi]
    pub fn peer_address(&self, id: u32) -> Option<Buffer> {
        let addr = self.core.as_ref()?.peer_address(id).ok()?;
        Some(address::record(&addr).into())
    }

    #[napi]
    pub fn set_no_delay(&self, id: u32, on: bool) -> Result<()> {
        self.core()?.with_socket(id, |s| s.set_tcp_nodelay(on)).map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi]
    pub fn get_no_delay(&self, id: u32) -> Result<bool> {
        self.core()?.with_socket(id, |s| s.tcp_nodelay()).map_err(|e| os_error(e, "getsockopt"))
    }

    #[napi]
    pub fn set_keep_alive(&self, id: u32, on: bool) -> Result<()> {
        self.core()?.with_socket(id, |s| s.set_keepalive(on)).map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi]
    pub fn get_keep_alive(&self, id: u32) -> Result<bool> {
        self.core()?.with_socket(id, |s| s.keepalive()).map_err(|e| os_error(e, "getsockopt"))
    }

    #[napi]
    pub fn send_to(&mut self, id: u32, data: Uint8ArraySlice, host: String, port: u32) -> Result<()> {
        let defer = self.dispatching;
        let outbox = self.outbox(id)?;
        let to = resolve(outbox, &host, port)?;
        outbox.send(data.as_ref(), Some(to), defer).map_err(|e| os_error(e, "sendto"))
    }

    #[napi]
    pub fn send(&mut self, id: u32, data: Uint8ArraySlice) -> Result<()> {
        let defer = self.dispatching;
        self.outbox(id)?.send(data.as_ref(), None, defer).map_err(|e| os_error(e, "send"))
    }

    #[napi]
    pub fn connect(&mut self, id: u32, host: String, port: u32) -> Result<()> {
        let outbox = self.outbox(id)?;
        let to = resolve(outbox, &host, port)?;
        outbox.socket().connect(&to).map_err(|e| os_error(e, "connect"))
    }

    #[napi]
    pub fn set_broadcast(&mut self, id: u32, on: bool) -> Result<()> {
        self.datagram_option(id, "setsockopt", |s, _| s.set_broadcast(on))
    }

    #[napi]
    pub fn get_broadcast(&mut self, id: u32) -> Result<bool> {
        self.datagram_option(id, "getsockopt", |s, _| s.broadcast())
    }

    #[napi]
    pub fn join_group(&mut self, id: u32, group: String, iface: Option<String>) -> Result<()> {
        self.membership(id, &group, iface.as_deref(), true)
    }

    #[napi]
    pub fn leave_group(&mut self, id: u32, group: String, iface: Option<String>) -> Result<()> {
        self.membership(id, &group, iface.as_deref(), false)
    }

    #[napi]
    pub fn set_ttl(&mut self, id: u32, ttl: u32) -> Result<()> {
        self.datagram_option(id, "setsockopt", |s, family| match family {
            libc::AF_INET6 => s.set_multicast_hops_v6(ttl),
            _ => s.set_multicast_ttl_v4(ttl),
        })
    }

    #[napi]
    pub fn get_ttl(&mut self, id: u32) -> Result<u32> {
        self.datagram_option(id, "getsockopt", |s, family| match family {
            libc::AF_INET6 => s.multicast_hops_v6(),
            _ => s.multicast_ttl_v4(),
        })
    }

    #[napi]
    pub fn set_loopback(&mut self, id: u32, on: bool) -> Result<()> {
        self.datagram_option(id, "setsockopt", |s, family| match family {
            libc::AF_INET6 => s.set_multicast_loop_v6(on),
            _ => s.set_multicast_loop_v4(on),
        })
    }

    #[napi]
    pub fn get_loopback(&mut self, id: u32) -> Result<bool> {
        self.datagram_option(id, "getsockopt", |s, family| match family {
            libc::AF_INET6 => s.multicast_loop_v6(),
            _ => s.multicast_loop_v4(),
        })
    }

    /// IPv4: an interface address; IPv6: an interface name or index (or an address with %scope).
    #[napi]
    pub fn set_outgoing_interface(&mut self, id: u32, addr: String) -> Result<()> {
        if self.datagram_family(id)? == libc::AF_INET6 {
            let index = v6_interface(&addr)?;
            return self.datagram_option(id, "setsockopt", |s, _| s.set_multicast_if_v6(index));
        }
        let v4: Ipv4Addr = addr.parse().map_err(|_| coded_error("ERR_INVALID_ADDRESS", "not an IPv4 address"))?;
        self.datagram_option(id, "setsockopt", |s, _| s.set_multicast_if_v4(&v4))
    }

    #[napi]
    pub fn get_outgoing_interface(&mut self, id: u32) -> Result<String> {
        self.datagram_option(id, "getsockopt", |s, family| match family {
            libc::AF_INET6 => s.multicast_if_v6().map(|i| i.to_string()),
            _ => s.multicast_if_v4().map(|a| a.to_string()),
        })
    }

    #[napi]
    pub fn dropped_datagrams(&self, id: u32) -> f64 {
        let sent = self.outboxes.get(&id).map_or(0, |o| o.dropped);
        self.core.as_ref().map_or(0.0, |c| (c.dropped_datagrams(id) + sent) as f64)
    }

    /// Holds Node's event loop open (JS calls this when its count of ref'd handles goes 0 → 1).
    #[napi(js_name = "ref")]
    pub fn hold_loop(&mut self, env: Env) -> Result<()> {
        self.hold(&env, true)
    }

    #[napi]
    pub fn unref(&mut self, env: Env) -> Result<()> {
        self.hold(&env, false)
    }

    /// Stops the I/O thread and closes every socket still held. Idempotent.
    #[napi]
    pub fn close(&mut self, env: Env) -> Result<()> {
        self.hold(&env, false)?;
        self.closed = true;
        for outbox in self.outboxes.values_mut() {
            outbox.flush();
        }
        self.outboxes.clear();
        if let Delivery::Hosted { driver, .. } = &self.delivery {
            if let Some(d) = driver.borrow_mut().take() {
                d.stop(); // before the core closes the fd it watches
            }
        }
        if let Some(core) = self.core.take() {
            core.close();
        }
        Ok(())
    }
}

impl NativeReactor {
    fn datagram_option<R>(&mut self, id: u32, syscall: &str, f: impl FnOnce(&Socket, i32) -> io::Result<R>) -> Result<R> {
        let outbox = self.outbox(id)?;
        f(outbox.socket(), outbox.family()).map_err(|e| os_error(e, syscall))
    }

    fn membership(&mut self, id: u32, group: &str, iface: Option<&str>, join: bool) -> Result<()> {
        let syscall = if join { "addMembership" } else { "dropMembership" };
        let bad = || coded_error("ERR_INVALID_ADDRESS", &format!("{group:?} is not a multicast address of the socket's family"));
        if self.datagram_family(id)? == libc::AF_INET6 {
            let g: Ipv6Addr = group.parse().map_err(|_| bad())?;
            let index = iface.map(v6_interface).transpose()?.unwrap_or(0);
            return self.datagram_option(id, syscall, |s, _| if join { s.join_multicast_v6(&g, index) } else { s.leave_multicast_v6(&g, index) });
        }
        let g: Ipv4Addr = group.parse().map_err(|_| bad())?;
        let i: Ipv4Addr = match iface {
            Some(a) => a.parse().map_err(|_| coded_error("ERR_INVALID_ADDRESS", "interface must be an IPv4 address"))?,
            None => Ipv4Addr::UNSPECIFIED,
        };
        self.datagram_option(id, syscall, |s, _| if join { s.join_multicast_v4(&g, &i) } else { s.leave_multicast_v4(&g, &i) })
    }
}

/// An IPv6 interface given as a name ("lo"), an index ("1"), or an address with a scope ("::1%lo").
fn v6_interface(spec: &str) -> Result<u32> {
    match spec.split_once('%') {
        Some((_, scope)) => interface_index(scope),
        None if spec.parse::<Ipv6Addr>().is_ok() => Ok(0),
        None => interface_index(spec),
    }
}

fn resolve(outbox: &mut Outbox, host: &str, port: u32) -> Result<SockAddr> {
    let port = u16::try_from(port).map_err(|_| coded_error("ERR_OUT_OF_RANGE", "port must be 0..65535"))?;
    outbox.resolve(host, port).map_err(|e| match e {
        SendError::InvalidAddress => {
            coded_error("ERR_INVALID_ADDRESS", &format!("{host:?} is not an IP address of the socket's family"))
        }
        SendError::Os(e) => os_error(e, "if_nametoindex"),
    })
}

