//! Who runs the loop: one `Driver`, in one of two variants.
//!
//! - `Thread`: a dedicated I/O thread turns the engine and announces batches through `Notify`.
//!   The host's loop may assist it: watch the same fd and turn on its own thread (`Reactor::attach_host`).
//! - `Hosted`: the host's own event loop (Node's, through libuv's `uv_poll`) watches the poller's
//!   fd (`Driver::poll_fd`) and calls `Driver::turn_hosted` whenever it is readable, on the host's thread; the announce
//!   is the return value. Work left over for later turns re-arms the fd through the waker, so the
//!   host comes back without spinning; a listener out of descriptors asks for a timer instead.
//!
//! The decisions both variants share (announce? come back at once? retry later?) are `State`'s:
//! `should_announce`, `has_ready_work`, `retry_accept`.

pub mod hosted;
pub mod thread;

pub use hosted::HostedTurn;

use crate::event_loop::engine::Engine;
use crate::event_loop::shared::Shared;
use crate::event_loop::Notify;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Who runs the loop. Callers use its methods only; the variant is its own business.
pub struct Driver(Variant);

enum Variant {
    /// The I/O thread; the engine is shared with an assisting host (see `thread`).
    Thread { engine: Arc<Mutex<Engine>>, epfd: RawFd, assist: Arc<thread::Assist>, handle: JoinHandle<()> },
    Hosted(Engine),
}

impl Driver {
    pub fn thread(engine: Engine, shared: Arc<Shared>, notify: Box<dyn Notify>) -> io::Result<Driver> {
        let epfd = engine.fd();
        let relays = Engine::for_relays(shared.clone())?;
        let engine = Arc::new(Mutex::new(engine));
        let assist = Arc::new(thread::Assist::default());
        let handle = thread::spawn(engine.clone(), epfd, relays, shared, assist.clone(), notify)?;
        Ok(Driver(Variant::Thread { engine, epfd, assist, handle }))
    }

    pub fn hosted(engine: Engine) -> Driver {
        Driver(Variant::Hosted(engine))
    }

    /// The main poller's epoll fd: readable whenever a turn has work. The host watches it (a
    /// hosted reactor's only driver, or an assisting host of a threaded one).
    pub fn poll_fd(&self) -> RawFd {
        match &self.0 {
            Variant::Thread { epfd, .. } => *epfd,
            Variant::Hosted(engine) => engine.fd(),
        }
    }

    /// One non-blocking turn on the host's thread: a hosted reactor's, or an assisting host's for
    /// a threaded one (the I/O thread then sees that the host keeps up).
    pub fn turn_hosted(&mut self, shared: &Shared) -> io::Result<HostedTurn> {
        match &mut self.0 {
            Variant::Hosted(engine) => hosted::turn(engine, shared),
            Variant::Thread { engine, assist, .. } => {
                assist.host_turned();
                hosted::turn(&mut engine.lock().unwrap_or_else(PoisonError::into_inner), shared)
            }
        }
    }

    /// The host's loop will also watch `poll_fd()` and call `turn_hosted()`: the I/O thread then
    /// leaves the events to it unless it is busy (see `thread`). Nothing for a hosted driver.
    pub fn attach_host(&self) {
        if let Variant::Thread { assist, .. } = &self.0 {
            assist.attach();
        }
    }

    /// Stops driving: joins the I/O thread (the caller has asked the loop to stop and woken it:
    /// the thread sees `stopping` at its next wake-up, and a wait for the host lasts 16 ms at
    /// most), or drops the hosted engine, which closes the poller's fd (the host must have
    /// stopped watching it).
    pub fn stop(self) {
        match self.0 {
            Variant::Thread { handle, .. } => {
                let _ = handle.join();
            }
            Variant::Hosted(engine) => drop(engine),
        }
    }
}
