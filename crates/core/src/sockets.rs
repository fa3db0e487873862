//! Helpers that make and inspect descriptors (filled by the sockets work).
