//! errno → code names (filled by the sockets work).
