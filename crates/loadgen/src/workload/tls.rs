//! `tls-stream` and `tls-connect`: `stream` and `connect` over TLS, with the core's TLS engine
//! (`reactor_core::tls`: rustls with ring) driven on the load generator's non-blocking sockets.
//! The server's certificate is verified against `--ca`, for `--server-name`.
//!
//! - `tls-stream`: every connection handshakes once, then writes `size`-byte messages and
//!   verifies their echo, at most `inflight` unanswered (as `stream`).
//! - `tls-connect`: `conns` loops of connect → handshake → one `size`-byte message → its echo →
//!   close_notify → close. Full handshakes each time (no session cache), or with `--resume`
//!   resumed ones: one config (and its session cache) shared by every connection.

use std::io;
use std::time::Instant;

use mio::event::Event;
use mio::Registry;
use reactor_core::tls::{ClientTlsConfig, ClientTlsOptions, End, ServerName, TlsSession};

use super::echo_window::{outstanding, EchoWindow};
use super::per_connection::PerConnection;
use super::Workload;
use crate::args::Config;
use crate::conn::ConnTable;
use crate::pattern::Pattern;
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::tcp::invalid;

fn client_config(cfg: &Config, resume: bool) -> io::Result<(ClientTlsConfig, ServerName<'static>)> {
    let path = cfg
        .ca
        .as_ref()
        .ok_or_else(|| invalid("TLS workloads need --ca".into()))?;
    let ca = std::fs::read(path).map_err(|e| invalid(format!("--ca {}: {e}", path.display())))?;
    let options = ClientTlsOptions {
        ca: Some(ca),
        session_cache_size: if resume { 1024 } else { 0 },
        ..Default::default()
    };
    let config = options.build().map_err(|e| invalid(e.to_string()))?;
    let name = config
        .server_name_for(&cfg.server_name)
        .map_err(|e| invalid(e.to_string()))?;
    Ok((config, name))
}

fn tls_failure(e: reactor_core::tls::TlsError) -> io::Error {
    invalid(format!("TLS: {e} ({})", e.code()))
}

/// Reads what the socket has into the session and hands each plaintext chunk to `chunk`; an end
/// of the server's side (close_notify, EOF, a TLS failure) is an error here: no workload expects
/// the server to close first.
fn read_plain(
    session: &mut TlsSession,
    sock: &mio::net::TcpStream,
    scratch: &mut [u8],
    mut chunk: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        let outcome = session.read_tls_from(sock)?;
        loop {
            let n = session.read_plaintext(scratch);
            if n == 0 {
                break;
            }
            chunk(&scratch[..n])?;
        }
        match outcome.end {
            Some(End::Failed(e)) => return Err(tls_failure(e)),
            Some(_) => return Err(invalid("server closed the connection".into())),
            None => {}
        }
        if !outcome.more {
            return Ok(());
        }
    }
}

pub struct TlsStream {
    size: u64,
    window: u64,
    table: ConnTable,
    conns: Vec<StreamConn>,
    config: ClientTlsConfig,
    name: ServerName<'static>,
    scratch: Vec<u8>,
}

struct StreamConn {
    /// Counted in plaintext bytes (`written`: those the session took).
    echo: EchoWindow,
    session: Option<TlsSession>,
}

impl TlsStream {
    pub fn new(cfg: &Config) -> io::Result<TlsStream> {
        let (config, name) = client_config(cfg, false)?;
        Ok(TlsStream {
            size: cfg.size as u64,
            window: (cfg.size * cfg.inflight) as u64,
            table: ConnTable::new(cfg.addr, cfg.conns),
            conns: (0..cfg.conns)
                .map(|i| StreamConn { echo: EchoWindow::new(i), session: None })
                .collect(),
            config,
            name,
            scratch: vec![0; 64 * 1024],
        })
    }

    fn service(
        &mut self,
        i: usize,
        event: &Event,
        sched: &Schedule,
        stats: &mut Stats,
    ) -> io::Result<()> {
        let size = self.size;
        let Some(sock) = self.table.ready(i)? else {
            return Ok(());
        };
        let StreamConn { echo: c, session } = &mut self.conns[i];
        let session = session.as_mut().expect("opened with its session");
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            read_plain(session, sock, &mut self.scratch, |chunk| c.echoed(chunk, size, sched, stats))?;
        }
        c.admit(size, self.window, sched);
        'fill: while c.written < c.queued {
            for s in c.pattern.slices(c.written, c.queued - c.written) {
                let n = session.write_plaintext(s);
                c.written += n as u64;
                if n < s.len() {
                    break 'fill; // the session's send buffer is full: the writable edge comes back
                }
            }
        }
        session.write_tls_to(sock)?;
        Ok(())
    }
}

impl Workload for TlsStream {
    fn start(
        &mut self,
        registry: &Registry,
        _sched: &Schedule,
        _stats: &mut Stats,
    ) -> io::Result<()> {
        for i in 0..self.table.len() {
            self.table.open(registry, i)?;
            let session =
                TlsSession::client(&self.config, self.name.clone()).map_err(tls_failure)?;
            self.conns[i].session = Some(session);
        }
        Ok(())
    }

    fn on_event(
        &mut self,
        registry: &Registry,
        event: &Event,
        sched: &Schedule,
        stats: &mut Stats,
    ) {
        let i = event.token().0;
        if let Err(e) = self.service(i, event, sched, stats) {
            stats.error(format_args!("tls stream connection {i}: {e}"));
            self.table.close(registry, i);
        }
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (outstanding(&self.table, self.conns.iter().map(|c| &c.echo)), "echo bytes")
    }

    fn is_dead(&self) -> bool {
        self.table.open_count() == 0
    }
}

pub struct TlsConnect {
    size: usize,
    table: ConnTable,
    slots: Vec<Slot>,
    config: ClientTlsConfig,
    name: ServerName<'static>,
    scratch: Vec<u8>,
}

struct Slot {
    pattern: Pattern,
    msg: Vec<u8>,
    /// Plaintext bytes of `msg` the session took.
    wpos: usize,
    got: usize,
    round: u64,
    started: Instant,
    session: Option<TlsSession>,
}

impl TlsConnect {
    pub fn new(cfg: &Config) -> io::Result<TlsConnect> {
        let (config, name) = client_config(cfg, cfg.resume)?;
        let slots = (0..cfg.conns)
            .map(|i| Slot {
                pattern: Pattern::new(i as u64),
                msg: vec![0; cfg.size],
                wpos: 0,
                got: 0,
                round: 0,
                started: Instant::now(),
                session: None,
            })
            .collect();
        Ok(TlsConnect {
            size: cfg.size,
            table: ConnTable::new(cfg.addr, cfg.conns),
            slots,
            config,
            name,
            scratch: vec![0; 64 * 1024],
        })
    }

    fn open(&mut self, registry: &Registry, i: usize, stats: &mut Stats) {
        let session = match TlsSession::client(&self.config, self.name.clone()) {
            Ok(s) => s,
            Err(e) => return stats.error(format_args!("tls connect slot {i}: {e}")),
        };
        match self.table.open(registry, i) {
            Ok(()) => {
                let s = &mut self.slots[i];
                s.pattern.fill(s.round * self.size as u64, &mut s.msg);
                s.round += 1;
                s.wpos = 0;
                s.got = 0;
                s.started = Instant::now();
                s.session = Some(session);
            }
            Err(e) => stats.error(format_args!("tls connect slot {i}: {e}")),
        }
    }

    /// Advances slot `i`; `Ok(true)` once its echo is complete (close_notify is then on its way).
    fn service(&mut self, i: usize) -> io::Result<bool> {
        let size = self.size;
        let Some(sock) = self.table.ready(i)? else {
            return Ok(false);
        };
        let s = &mut self.slots[i];
        let session = s.session.as_mut().expect("opened with its session");
        // The message is taken at once and held by the session until the handshake completes.
        s.wpos += session.write_plaintext(&s.msg[s.wpos..]);
        session.write_tls_to(sock)?;
        let (pattern, got, wpos, round) = (&s.pattern, &mut s.got, s.wpos, s.round);
        read_plain(session, sock, &mut self.scratch, |echoed| {
            let n = echoed.len();
            if *got + n > wpos {
                return Err(invalid(format!(
                    "server echoed {} bytes, only {wpos} were sent",
                    *got + n
                )));
            }
            let offset = (round - 1) * size as u64 + *got as u64;
            pattern
                .verify(offset, echoed)
                .map_err(|m| invalid(format!("echo mismatch: {m}")))?;
            *got += n;
            Ok(())
        })
        .map_err(|e| invalid(format!("{e} (after {} of {size} echo bytes)", s.got)))?;
        if s.got < size {
            // What reading produced for the server (the client's Finished, and the message the
            // session held until then) leaves now: no other edge would announce it.
            s.wpos += session.write_plaintext(&s.msg[s.wpos..]);
            session.write_tls_to(sock)?;
            return Ok(false);
        }
        session.send_close_notify();
        let _ = session.write_tls_to(sock);
        Ok(true)
    }
}

impl PerConnection for TlsConnect {
    const NAME: &'static str = "tls connect";
    fn table(&self) -> &ConnTable {
        &self.table
    }
    fn table_mut(&mut self) -> &mut ConnTable {
        &mut self.table
    }
    fn size(&self) -> usize {
        self.size
    }
    fn started(&self, i: usize) -> Instant {
        self.slots[i].started
    }
    fn open(&mut self, registry: &Registry, i: usize, stats: &mut Stats) {
        TlsConnect::open(self, registry, i, stats)
    }
    fn advance(&mut self, i: usize, _event: &Event) -> io::Result<bool> {
        self.service(i)
    }
    fn release(&mut self, i: usize) {
        self.slots[i].session = None;
    }
}

impl Workload for TlsConnect {
    fn start(&mut self, registry: &Registry, _sched: &Schedule, stats: &mut Stats) -> io::Result<()> {
        self.open_all(registry, stats);
        Ok(())
    }

    fn on_event(&mut self, registry: &Registry, event: &Event, sched: &Schedule, stats: &mut Stats) {
        self.on_slot_event(registry, event, sched, stats)
    }

    fn on_tick(&mut self, registry: &Registry, sched: &Schedule, stats: &mut Stats) -> Option<Instant> {
        self.reopen_closed(registry, sched, stats)
    }

    fn outstanding(&self) -> (u64, &'static str) {
        (self.table.open_count() as u64, "connections")
    }
}
