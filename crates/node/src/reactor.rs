//! `NativeReactor`: the JS handle on one core reactor. This file holds its life: creation of the
//! core on the first adoption, how batches reach JS (delivery), whether it holds Node's loop
//! open, and its close. Its other calls are glue over the core, by concern, in their own
//! `#[napi] impl` blocks: batches.rs, streams.rs, datagrams.rs.

use crate::error::{coded_error, os_error};
use crate::hosted::LoopWatcher;
use crate::numbers;
use crate::notify::{BatchReady, TsfnNotify};
use crate::teardown;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use reactor_core::Consumer;
use reactor_core::Stats;
use reactor_core::{Adopt, AdoptError, Reactor};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

/// An adopt call's outcome: `id`, or why it was refused (`refusal` is one of the REFUSED_*
/// constants, with the errno, the socket's actual type or its actual family).
#[napi(object)]
#[derive(Default)]
pub struct AdoptResult {
    pub id: Option<u32>,
    pub refusal: Option<u32>,
    pub errno: Option<i32>,
    pub socket_type: Option<i32>,
    pub actual_family: Option<i32>,
}

impl AdoptResult {
    pub(crate) fn refused(err: AdoptError) -> AdoptResult {
        let mut r = AdoptResult { refusal: Some(err.refusal()), errno: err.errno(), ..Default::default() };
        match err {
            AdoptError::SocketType(t) => r.socket_type = Some(t),
            AdoptError::Family(f) => r.actual_family = Some(f),
            _ => {}
        }
        r
    }
}

/// Checks `fd` for an adoption of kind `what` (ADOPT_*) without adopting it or opening anything.
#[napi(catch_unwind)]
pub fn check_adoption(fd: f64, family: i32, what: u32) -> Result<AdoptResult> {
    let fd = numbers::fd(fd, "fcntl")?;
    let what = adopt_kind(what, 1)?;
    Ok(what.check(fd, family).err().map_or_else(AdoptResult::default, AdoptResult::refused))
}

fn adopt_kind(what: u32, max_packet: u32) -> Result<Adopt> {
    Adopt::from_wire(what, max_packet as usize).ok_or_else(|| coded_error("ERR_INVALID_ARG_VALUE", "unknown adoption kind"))
}

/// How batches reach JS. Node's loop always watches the core's poller (`LoopWatcher`) and calls
/// `on_ready` itself when a turn finds a batch: no hop. In the threaded mode the I/O thread also
/// announces, through a threadsafe function (`announcer`), what a busy JS thread left waiting
/// (see reactor_core's driver::thread).
struct Delivery {
    on_ready: FunctionRef<(), ()>,
    watcher: Rc<RefCell<Option<LoopWatcher>>>,
    /// The threaded mode's announcer; None when Node's loop alone drives the core.
    announcer: Option<Arc<BatchReady>>,
}

#[napi]
pub struct NativeReactor {
    delivery: Delivery,
    /// The JS thread's side of the core, made with the core on the first successful adoption.
    pub(crate) consumer: Option<Consumer>,
    /// Whether JS wants Node's loop held open (applied to the driver once there is one).
    held: bool,
    pub(crate) closed: bool,
    /// The figures at the close (the consumer is gone then).
    final_stats: Stats,
}

impl NativeReactor {
    /// The core, for calls that are meaningless before the first adoption or after the close.
    pub(crate) fn core(&self) -> Result<&Reactor> {
        match (&self.consumer, self.closed) {
            (_, true) => Err(closed_reactor()),
            (Some(c), false) => Ok(c.core()),
            (None, false) => Err(os_error(io::Error::from_raw_os_error(libc::EBADF), "reactor")),
        }
    }

    /// The core, or None (calls on ids of a reactor that never adopted anything do nothing).
    pub(crate) fn live_core(&self) -> Option<&Reactor> {
        self.consumer.as_ref().map(|c| &**c.core())
    }

    pub(crate) fn current_stats(&self) -> Stats {
        self.consumer.as_ref().map_or(self.final_stats, Consumer::stats)
    }

    pub(crate) fn consumer_mut(&mut self) -> Result<&mut Consumer> {
        if self.closed {
            return Err(closed_reactor());
        }
        self.consumer.as_mut().ok_or_else(|| os_error(io::Error::from_raw_os_error(libc::EBADF), "reactor"))
    }

    /// The core, started on first use (the first successful adoption or connect).
    pub(crate) fn ensure_core(&mut self, env: &Env) -> Result<&Reactor> {
        if self.closed {
            return Err(closed_reactor());
        }
        if self.consumer.is_none() {
            let core = self.start_core(env)?;
            self.consumer = Some(Consumer::new(core));
        }
        self.core()
    }

    fn start_core(&mut self, env: &Env) -> Result<Arc<Reactor>> {
        let started = |e| os_error(e, "epoll_create");
        let Delivery { on_ready, watcher, announcer } = &self.delivery;
        let core = Arc::new(match announcer {
            Some(ready) => Reactor::start(Box::new(TsfnNotify::new(ready.clone()))),
            None => Reactor::start_hosted(),
        }
        .map_err(started)?);
        core.attach_host();
        let watching = LoopWatcher::start(env, core.clone(), &on_ready.borrow_back(env)?)?;
        // Liveness: the watcher holds the loop when Node's loop alone drives the core; in the
        // threaded mode the threadsafe function does, and the watcher never does.
        watching.hold(self.held && announcer.is_none());
        *watcher.borrow_mut() = Some(watching);
        let (weak, watcher) = (Arc::downgrade(&core), watcher.clone());
        teardown::at_exit(env, move || {
            // Stop watching before the core closes the fd being watched.
            if let Some(d) = watcher.borrow_mut().take() {
                d.stop();
            }
            if let Some(core) = weak.upgrade() {
                core.close_unsettled_fds(); // a worker terminated mid-batch: nothing can use them now
                core.close();
            }
        })?;
        Ok(core)
    }

    fn hold(&mut self, env: &Env, on: bool) -> Result<()> {
        self.held = on;
        match &self.delivery.announcer {
            Some(ready) => ready.hold(env, on),
            None => {
                if let Some(w) = self.delivery.watcher.borrow().as_ref() {
                    w.hold(on);
                }
                Ok(())
            }
        }
    }
}

pub(crate) fn closed_reactor() -> Error {
    coded_error("ERR_REACTOR_CLOSED", "the reactor is closed")
}

#[napi]
impl NativeReactor {
    /// `on_ready` is called (no arguments) on the JS thread when a batch can be taken. `thread`
    /// (default true) runs the loop on its own I/O thread; false lets Node's loop drive it.
    /// Nothing is opened here: the poller starts with the first successful adoption.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, on_ready: Function<(), ()>, thread: Option<bool>) -> Result<Self> {
        let on_ready_ref = on_ready.create_ref()?;
        let announcer = if thread.unwrap_or(true) { Some(Arc::new(BatchReady::new(&env, on_ready)?)) } else { None };
        let delivery = Delivery { on_ready: on_ready_ref, watcher: Rc::new(RefCell::new(None)), announcer };
        Ok(NativeReactor { delivery, consumer: None, held: false, closed: false, final_stats: Stats::default() })
    }

    /// Validates and adopts `fd` as `what` (ADOPT_*; `max_packet_size` for datagram ports). The
    /// core starts with the first success: a refused first call opens nothing.
    #[napi(catch_unwind)]
    pub fn adopt(&mut self, env: Env, fd: f64, family: i32, what: u32, max_packet_size: Option<u32>) -> Result<AdoptResult> {
        if self.closed {
            return Err(closed_reactor());
        }
        let fd = numbers::fd(fd, "fcntl")?;
        let what = adopt_kind(what, max_packet_size.unwrap_or(0))?;
        if self.consumer.is_none() {
            if let Err(e) = what.check(fd, family) {
                return Ok(AdoptResult::refused(e));
            }
        }
        self.ensure_core(&env)?;
        match self.core()?.adopt(fd, family, what) {
            Ok(id) => Ok(AdoptResult { id: Some(id), ..Default::default() }),
            Err(e) => Ok(AdoptResult::refused(e)),
        }
    }

    /// Holds Node's event loop open (JS calls this when its count of ref'd handles goes 0 → 1).
    #[napi(js_name = "ref", catch_unwind)]
    pub fn hold_loop(&mut self, env: Env) -> Result<()> {
        self.hold(&env, true)
    }

    #[napi(catch_unwind)]
    pub fn unref(&mut self, env: Env) -> Result<()> {
        self.hold(&env, false)
    }

    /// Stops the I/O thread (or the watcher) and closes every socket still held. Idempotent.
    #[napi(catch_unwind)]
    pub fn close(&mut self, env: Env) -> Result<()> {
        self.hold(&env, false)?;
        self.closed = true;
        if let Some(d) = self.delivery.watcher.borrow_mut().take() {
            d.stop(); // before the core closes the fd it watches
        }
        if let Some(mut consumer) = self.consumer.take() {
            consumer.close();
            self.final_stats = consumer.stats();
        }
        Ok(())
    }
}
