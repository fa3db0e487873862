//! Who runs the loop. `thread`: a dedicated I/O thread (the default). A second driver that lets
//! the host's own event loop watch the poller's fd replaces only this part.

pub mod thread;
