//! Outbound connections and relays: glue over `Reactor::connect` and `Reactor::relay`.

use crate::error::os_error;
use crate::numbers;
use crate::reactor::NativeReactor;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::sys::sockets::{ip_socket_addr, unix_socket_addr};
use reactor_core::RelayOptions;

#[napi]
impl NativeReactor {
    /// Starts a non-blocking connect to `host` (an IP literal) and `port`, from `bind` when given;
    /// returns the connection's id. EV_CONNECTED (or EV_CLOSED with the errno) follows.
    #[napi(catch_unwind)]
    pub fn connect_tcp(&mut self, env: Env, host: String, port: f64, bind_host: Option<String>, bind_port: Option<f64>) -> Result<u32> {
        let to = ip_socket_addr(&host, numbers::port(port)?).map_err(|e| os_error(e, "connect"))?;
        let bind = match bind_host {
            Some(h) => Some(ip_socket_addr(&h, numbers::port(bind_port.unwrap_or(0.0))?).map_err(|e| os_error(e, "bind"))?),
            None => None,
        };
        let to = to.into();
        let bind = bind.map(Into::into);
        self.ensure_core(&env)?.connect(&to, bind.as_ref()).map_err(|e| os_error(e, "connect"))
    }

    /// Like connectTcp, to a UNIX path (abstract names start with "\0").
    #[napi(catch_unwind)]
    pub fn connect_unix(&mut self, env: Env, path: String) -> Result<u32> {
        let to = unix_socket_addr(&path).map_err(|e| os_error(e, "connect"))?;
        self.ensure_core(&env)?.connect(&to, None).map_err(|e| os_error(e, "connect"))
    }

    /// Starts relaying between connections `a` and `b`; `held_a`/`held_b` are bytes JS still
    /// holds for each (they go out first). Returns the relay's id; EV_RELAY_ENDED reports its end.
    #[napi(catch_unwind)]
    /// `idle_timeout_ms`: no byte either way for that long aborts both with ETIMEDOUT (None: never).
    pub fn relay(&self, a: u32, b: u32, held_a: Vec<Uint8ArraySlice>, held_b: Vec<Uint8ArraySlice>, buffer_size: f64, idle_timeout_ms: Option<f64>) -> Result<u32> {
        let cap = numbers::u32_exact(buffer_size, "bufferSize")? as usize;
        let idle_timeout = idle_timeout_ms.map(|ms| numbers::duration_ms(ms, "idleTimeout")).transpose()?;
        let held_a: Vec<&[u8]> = held_a.iter().map(|c| c.as_ref()).collect();
        let held_b: Vec<&[u8]> = held_b.iter().map(|c| c.as_ref()).collect();
        self.core()?.relay(a, b, &held_a, &held_b, RelayOptions { cap, idle_timeout }).map_err(|e| os_error(e, "relay"))
    }

    /// Bytes moved [a→b, b→a] so far; null once it ended.
    #[napi(catch_unwind)]
    pub fn relay_counts(&self, relay: u32) -> Option<Vec<f64>> {
        let (ab, ba) = self.live_core()?.relay_counts(relay)?;
        Some(vec![ab as f64, ba as f64])
    }
}
