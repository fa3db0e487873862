//! Who runs the loop: one `Driver`, in one of two variants.
//!
//! - `Thread`: a dedicated I/O thread turns the engine and announces batches through `Notify`.
//!   The host's loop may assist it: watch the same fd and turn on its own thread (`Reactor::attach_host`).
//! - `Hosted`: the host's own event loop (Node's, through libuv's `uv_poll`) watches the poller's
//!   fd and calls `Driver::turn_hosted` whenever it is readable, on the host's thread; the announce
//!   is the return value. Work left over for later turns re-arms the fd through the waker, so the
//!   host comes back without spinning; a listener out of descriptors asks for a timer instead.
//!
//! The decisions both variants share (announce? come back at once? retry later?) are `State`'s:
//! `should_announce`, `has_ready_work`, `retry_accept`.

pub mod hosted;

pub use hosted::HostedTurn;
pub mod thread;

use crate::event_loop::engine::Engine;
use crate::event_loop::shared::Shared;
use crate::event_loop::Notify;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub enum Driver {
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
        Ok(Driver::Thread { engine, epfd, assist, handle })
    }

    pub fn hosted(engine: Engine) -> Driver {
        Driver::Hosted(engine)
    }

    /// Stops driving: joins the I/O thread (the caller has asked the loop to stop and woken it),
    /// or drops the hosted engine, which closes the poller's fd (the host must have stopped
    /// watching it).
    pub fn stop(self) {
        match self {
            // The thread sees `stopping` at its next wake-up: the caller woke the main poller,
            // and a wait for the host lasts 16 ms at most.
            Driver::Thread { handle, .. } => {
                let _ = handle.join();
            }
            Driver::Hosted(engine) => drop(engine),
        }
    }
}
