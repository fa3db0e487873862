//! `http`: every connection is an HTTP/1.1 keep-alive client that sends one
//! `GET /<conn>/<n>/xxx…` at a time (the path padded to `size` bytes), waits for the
//! whole response and checks it: status 200, a `Content-Length` body that repeats the
//! request path (the benchmark servers answer each request with its own URL, so a
//! response to another request or connection cannot pass). The loop is `RoundTrips`.

use std::io;

use super::roundtrip::{Exchange, RoundTrips};
use crate::args::Config;
use crate::conn::ConnTable;
use crate::http1::{parse_head, Head};
use crate::tcp::invalid;

pub fn workload(cfg: &Config) -> RoundTrips<Client> {
    let exchanges = (0..cfg.conns)
        .map(|conn| Client {
            conn,
            size: cfg.size,
            ..Client::default()
        })
        .collect();
    RoundTrips::new("http", ConnTable::new(cfg.addr, cfg.conns), exchanges)
}

#[derive(Default)]
pub struct Client {
    conn: usize,
    size: usize,
    /// Requests made on this connection.
    seq: u64,
    path: String,
    request: Vec<u8>,
    /// The response received so far, and its head once complete.
    response: Vec<u8>,
    head: Option<Head>,
}

impl Exchange for Client {
    fn prepare(&mut self) {
        self.path = format!("/{}/{}/", self.conn, self.seq);
        while self.path.len() < self.size {
            self.path.push('x');
        }
        self.seq += 1;
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(self.path.as_bytes());
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nHost: bench\r\nConnection: keep-alive\r\n\r\n");
        self.response.clear();
        self.head = None;
    }

    fn request(&self) -> &[u8] {
        &self.request
    }

    fn take(&mut self, bytes: &[u8], _written: usize) -> io::Result<Option<u64>> {
        self.response.extend_from_slice(bytes);
        if self.head.is_none() {
            self.head = parse_head(&self.response).map_err(invalid)?;
        }
        let Some(head) = self.head else {
            return Ok(None);
        };
        let total = head.len + head.content_length;
        if self.response.len() < total {
            return Ok(None);
        }
        if self.response.len() > total {
            return Err(invalid(format!(
                "{} bytes after the response",
                self.response.len() - total
            )));
        }
        if &self.response[head.len..] != self.path.as_bytes() {
            return Err(invalid(format!(
                "response body {:?} for request {:?}",
                String::from_utf8_lossy(&self.response[head.len..]),
                self.path
            )));
        }
        Ok(Some(total as u64))
    }
}
