//! Datagram ports: sends (deferred while JS handles a batch; see reactor_core::consumer),
//! connect, options and multicast, by id.

use crate::error::{coded_error, os_error};
use crate::numbers;
use crate::reactor::NativeReactor;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::datagram_options::{self as options, DatagramError, DatagramResult};

fn js<T>(r: DatagramResult<T>) -> Result<T> {
    r.map_err(|e| match e {
        DatagramError::InvalidAddress(msg) => coded_error("ERR_INVALID_ADDRESS", &msg),
        DatagramError::Os(e, syscall) => os_error(e, syscall),
    })
}


#[napi]
impl NativeReactor {
    #[napi(catch_unwind)]
    pub fn send_to(&mut self, id: u32, data: Uint8ArraySlice, host: String, port: f64) -> Result<()> {
        let port = numbers::port(port)?;
        js(self.consumer_mut()?.send_to(id, data.as_ref(), &host, port))
    }

    /// Sends to the address of the last `sendTo` on this port (the JS side keeps which one).
    #[napi(catch_unwind)]
    pub fn send_again(&mut self, id: u32, data: Uint8ArraySlice) -> Result<()> {
        js(self.consumer_mut()?.send_again(id, data.as_ref()))
    }

    #[napi(catch_unwind)]
    pub fn send(&mut self, id: u32, data: Uint8ArraySlice) -> Result<()> {
        js(self.consumer_mut()?.send(id, data.as_ref()))
    }

    #[napi(catch_unwind)]
    pub fn connect(&mut self, id: u32, host: String, port: f64) -> Result<()> {
        let port = numbers::port(port)?;
        js(self.consumer_mut()?.connect(id, &host, port))
    }

    #[napi(catch_unwind)]
    pub fn set_broadcast(&mut self, id: u32, on: bool) -> Result<()> {
        js(self.consumer_mut()?.datagram_socket(id, |s, _| options::set_broadcast(s, on)))
    }

    #[napi(catch_unwind)]
    pub fn get_broadcast(&mut self, id: u32) -> Result<bool> {
        js(self.consumer_mut()?.datagram_socket(id, |s, _| options::broadcast(s)))
    }

    #[napi(catch_unwind)]
    pub fn join_group(&mut self, id: u32, group: String, iface: Option<String>) -> Result<()> {
        js(self.consumer_mut()?.datagram_socket(id, |s, f| options::membership(s, f, &group, iface.as_deref(), true)))
    }

    #[napi(catch_unwind)]
    pub fn leave_group(&mut self, id: u32, group: String, iface: Option<String>) -> Result<()> {
        js(self.consumer_mut()?.datagram_socket(id, |s, f| options::membership(s, f, &group, iface.as_deref(), false)))
    }

    #[napi(catch_unwind)]
    pub fn set_ttl(&mut self, id: u32, ttl: u32) -> Result<()> {
        js(self.consumer_mut()?.datagram_socket(id, |s, f| options::set_ttl(s, f, ttl)))
    }

    #[napi(catch_unwind)]
    pub fn get_ttl(&mut self, id: u32) -> Result<u32> {
        js(self.consumer_mut()?.datagram_socket(id, options::ttl))
    }

    #[napi(catch_unwind)]
    pub fn set_loopback(&mut self, id: u32, on: bool) -> Result<()> {
        js(self.consumer_mut()?.datagram_socket(id, |s, f| options::set_loopback(s, f, on)))
    }

    #[napi(catch_unwind)]
    pub fn get_loopback(&mut self, id: u32) -> Result<bool> {
        js(self.consumer_mut()?.datagram_socket(id, options::loopback))
    }

    /// IPv4: an interface address; IPv6: an interface name or index (or an address with %scope).
    #[napi(catch_unwind)]
    pub fn set_outgoing_interface(&mut self, id: u32, addr: String) -> Result<()> {
        js(self.consumer_mut()?.datagram_socket(id, |s, f| options::set_outgoing_interface(s, f, &addr)))
    }

    #[napi(catch_unwind)]
    pub fn get_outgoing_interface(&mut self, id: u32) -> Result<String> {
        js(self.consumer_mut()?.datagram_socket(id, options::outgoing_interface))
    }

    /// Datagrams lost since adoption (the kernel's drops at the socket, and sends with no room).
    #[napi(catch_unwind)]
    pub fn dropped_datagrams(&self, id: u32) -> f64 {
        self.consumer.as_ref().map_or(0.0, |c| c.dropped_datagrams(id) as f64)
    }
}
