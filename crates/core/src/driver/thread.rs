//! The loop on its own thread; batches are announced through the consumer's `Notify`.

use crate::engine::{Engine, Turn};
use crate::Notify;
use std::io;
use std::thread::JoinHandle;

pub fn spawn(mut engine: Engine, notify: Box<dyn Notify>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("reactor-io".into()).spawn(move || loop {
        match engine.turn(None) {
            Ok(Turn::Announce) => notify.batch_ready(),
            Ok(Turn::Quiet) => {}
            Ok(Turn::Stop) => return,
            // epoll_wait fails only on a broken poller (EBADF/EINVAL): nothing left to serve.
            Err(_) => return,
        }
    })
}
