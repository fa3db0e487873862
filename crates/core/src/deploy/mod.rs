//! Deployment: how sockets reach a process (systemd socket activation, a predecessor's handoff) and
//! how it reports to its supervisor (sd_notify). Built on `sys` only; the event loop is not needed.

pub mod handoff;
pub mod systemd;
