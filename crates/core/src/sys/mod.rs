//! Every OS call the core makes that socket2 and mio do not wrap, fenced here as mio fences its
//! own: the rest of the core calls these functions and holds no `unsafe` of its own.

pub mod cmsg;
pub mod errno;
pub mod fd;
pub mod mmsg;
pub mod pipe;
pub mod poll;
pub mod scm;
pub mod sockets;
pub mod udp_offload;
pub mod validate;
