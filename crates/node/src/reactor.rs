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
use reactor_core::{address, Adopt, AdoptError, Reactor};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

#[napi(object)]
pub struct NativeBatch {
    pub events: Uint32Array,
    pub data: Buffer,
}

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

/// Parses an IP literal of the port's family into a socket address.
fn ip_address(family: i32, host: &str, port: u32) -> Result<SockAddr> {
    let port = u16::try_from(port).map_err(|_| coded_error("ERR_OUT_OF_RANGE", "port must be 0..65535"))?;
    let (host, scope) = match host.split_once('%') {
        Some((h, iface)) => (h, Some(iface)),
        None => (host, None),
    };
    let invalid = || coded_error("ERR_INVALID_ADDRESS", &format!("{host:?} is not an IP address of the socket's family"));
    let ip: IpAddr = host.parse().map_err(|_| invalid())?;
    let addr = match (family, ip) {
        (libc::AF_INET, IpAddr::V4(v4)) => SocketAddr::from((v4, port)),
        (libc::AF_INET6, IpAddr::V6(v6)) => {
            let scope_id = scope.map(interface_index).transpose()?.unwrap_or(0);
            SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope_id))
        }
        _ => return Err(invalid()),
    };
    Ok(addr.into())
}

fn interface_index(name: &str) -> Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    let c = std::ffi::CString::new(name).map_err(|_| coded_error("ERR_INVALID_ADDRESS", "bad interface name"))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(os_error(io::Error::last_os_error(), "if_nametoindex"));
    }
    Ok(index)
}

fn family_of(sock: &Socket) -> io::Result<i32> {
    Ok(i32::from(sock.domain()?))
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

    fn datagram_family(&self, id: u32) -> Result<i32> {
        self.core()?.with_socket(id, family_of).map_err(|e| os_error(e, "getsockopt"))
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
        Ok(NativeReactor { delivery, core: None, held: false, closed: false })
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

    #[napi]
    pub fn take_batch(&self) -> Option<NativeBatch> {
        let core = self.core.as_ref()?;
        let batch = core.take_batch()?;
        Some(NativeBatch { events: Uint32Array::new(batch.events), data: batch.data.into() })
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

    #[napi]
    pub fn close_port(&self, id: u32) {
        if let Some(c) = &self.core {
            c.close_port(id)
        }
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
    pub fn send_to(&self, id: u32, data: Uint8ArraySlice, host: String, port: u32) -> Result<()> {
        let to = ip_address(self.datagram_family(id)?, &host, port)?;
        self.core()?
            .with_socket(id, |s| send_datagram(s, data.as_ref(), Some(&to)))
            .map_err(|e| os_error(e, "sendto"))
    }

    #[napi]
    pub fn send(&self, id: u32, data: Uint8ArraySlice) -> Result<()> {
        self.core()?.with_socket(id, |s| send_datagram(s, data.as_ref(), None)).map_err(|e| os_error(e, "send"))
    }

    #[napi]
    pub fn connect(&self, id: u32, host: String, port: u32) -> Result<()> {
        let to = ip_address(self.datagram_family(id)?, &host, port)?;
        self.core()?.with_socket(id, |s| s.connect(&to)).map_err(|e| os_error(e, "connect"))
    }

    #[napi]
    pub fn set_broadcast(&self, id: u32, on: bool) -> Result<()> {
        self.core()?.with_socket(id, |s| s.set_broadcast(on)).map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi]
    pub fn get_broadcast(&self, id: u32) -> Result<bool> {
        self.core()?.with_socket(id, |s| s.broadcast()).map_err(|e| os_error(e, "getsockopt"))
    }

    #[napi]
    pub fn join_group(&self, id: u32, group: String, iface: Option<String>) -> Result<()> {
        self.membership(id, &group, iface.as_deref(), true)
    }

    #[napi]
    pub fn leave_group(&self, id: u32, group: String, iface: Option<String>) -> Result<()> {
        self.membership(id, &group, iface.as_deref(), false)
    }

    #[napi]
    pub fn set_ttl(&self, id: u32, ttl: u32) -> Result<()> {
        let family = self.datagram_family(id)?;
        self.core()?
            .with_socket(id, |s| match family {
                libc::AF_INET6 => s.set_multicast_hops_v6(ttl),
                _ => s.set_multicast_ttl_v4(ttl),
            })
            .map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi]
    pub fn get_ttl(&self, id: u32) -> Result<u32> {
        let family = self.datagram_family(id)?;
        self.core()?
            .with_socket(id, |s| match family {
                libc::AF_INET6 => s.multicast_hops_v6(),
                _ => s.multicast_ttl_v4(),
            })
            .map_err(|e| os_error(e, "getsockopt"))
    }

    #[napi]
    pub fn set_loopback(&self, id: u32, on: bool) -> Result<()> {
        let family = self.datagram_family(id)?;
        self.core()?
            .with_socket(id, |s| match family {
                libc::AF_INET6 => s.set_multicast_loop_v6(on),
                _ => s.set_multicast_loop_v4(on),
            })
            .map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi]
    pub fn get_loopback(&self, id: u32) -> Result<bool> {
        let family = self.datagram_family(id)?;
        self.core()?
            .with_socket(id, |s| match family {
                libc::AF_INET6 => s.multicast_loop_v6(),
                _ => s.multicast_loop_v4(),
            })
            .map_err(|e| os_error(e, "getsockopt"))
    }

    /// IPv4: an interface address; IPv6: an interface name or index (or an address with %scope).
    #[napi]
    pub fn set_outgoing_interface(&self, id: u32, addr: String) -> Result<()> {
        let family = self.datagram_family(id)?;
        let r = match family {
            libc::AF_INET6 => {
                let index = v6_interface(&addr)?;
                self.core()?.with_socket(id, |s| s.set_multicast_if_v6(index))
            }
            _ => {
                let v4: Ipv4Addr = addr.parse().map_err(|_| coded_error("ERR_INVALID_ADDRESS", "not an IPv4 address"))?;
                self.core()?.with_socket(id, |s| s.set_multicast_if_v4(&v4))
            }
        };
        r.map_err(|e| os_error(e, "setsockopt"))
    }

    #[napi]
    pub fn get_outgoing_interface(&self, id: u32) -> Result<String> {
        let family = self.datagram_family(id)?;
        self.core()?
            .with_socket(id, |s| match family {
                libc::AF_INET6 => s.multicast_if_v6().map(|i| i.to_string()),
                _ => s.multicast_if_v4().map(|a| a.to_string()),
            })
            .map_err(|e| os_error(e, "getsockopt"))
    }

    #[napi]
    pub fn dropped_datagrams(&self, id: u32) -> f64 {
        self.core.as_ref().map_or(0.0, |c| c.dropped_datagrams(id) as f64)
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
    fn membership(&self, id: u32, group: &str, iface: Option<&str>, join: bool) -> Result<()> {
        let family = self.datagram_family(id)?;
        let bad = || coded_error("ERR_INVALID_ADDRESS", &format!("{group:?} is not a multicast address of the socket's family"));
        let r = match family {
            libc::AF_INET6 => {
                let g: Ipv6Addr = group.parse().map_err(|_| bad())?;
                let index = iface.map(v6_interface).transpose()?.unwrap_or(0);
                self.core()?.with_socket(id, |s| if join { s.join_multicast_v6(&g, index) } else { s.leave_multicast_v6(&g, index) })
            }
            _ => {
                let g: Ipv4Addr = group.parse().map_err(|_| bad())?;
                let i: Ipv4Addr = match iface {
                    Some(a) => a.parse().map_err(|_| coded_error("ERR_INVALID_ADDRESS", "interface must be an IPv4 address"))?,
                    None => Ipv4Addr::UNSPECIFIED,
                };
                self.core()?.with_socket(id, |s| if join { s.join_multicast_v4(&g, &i) } else { s.leave_multicast_v4(&g, &i) })
            }
        };
        r.map_err(|e| os_error(e, if join { "addMembership" } else { "dropMembership" }))
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

/// One datagram, never blocking; a datagram the kernel cannot queue now (EAGAIN) is dropped, as
/// a full network queue would.
fn send_datagram(sock: &Socket, data: &[u8], to: Option<&SockAddr>) -> io::Result<()> {
    loop {
        let r = match to {
            Some(addr) => sock.send_to_with_flags(data, addr, libc::MSG_NOSIGNAL),
            None => sock.send_with_flags(data, libc::MSG_NOSIGNAL),
        };
        match r {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
