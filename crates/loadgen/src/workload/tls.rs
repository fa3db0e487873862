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

use mio::event::Event;
use mio::Registry;
use reactor_core::tls::{ClientTlsConfig, ClientTlsOptions, End, ServerName, TlsSession};

use super::echo_window::{outstanding, EchoWindow};
use super::per_connection::{PerConnection, Slots};
use super::Workload;
use crate::args::Config;
use crate::conn::ConnTable;
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
    slots: Slots,
    /// Each open slot's TLS session.
    sessions: Vec<Option<TlsSession>>,
    config: ClientTlsConfig,
    name: ServerName<'static>,
}

impl TlsConnect {
    pub fn new(cfg: &Config) -> io::Result<TlsConnect> {
        let (config, name) = client_config(cfg, cfg.resume)?;
        Ok(TlsConnect { slots: Slots::new(cfg), sessions: (0..cfg.conns).map(|_| None).collect(), config, name })
    }
}

impl PerConnection for TlsConnect {
    const NAME: &'static str = "tls connect";
    fn slots(&self) -> &Slots {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }
    fn prepare(&mut self, i: usize) -> io::Result<()> {
        self.sessions[i] = Some(TlsSession::client(&self.config, self.name.clone()).map_err(tls_failure)?);
        Ok(())
    }
    fn release(&mut self, i: usize) {
        self.sessions[i] = None;
    }

    /// `Ok(true)` once the echo is complete (close_notify is then on its way).
    fn advance(&mut self, i: usize, _event: &Event) -> io::Result<bool> {
        let Slots { table, echoes, scratch } = &mut self.slots;
        let Some(sock) = table.ready(i)? else {
            return Ok(false);
        };
        let echo = &mut echoes[i];
        let session = self.sessions[i].as_mut().expect("opened with its session");
        // The message is taken at once and held by the session until the handshake completes.
        echo.wpos += session.write_plaintext(&echo.msg[echo.wpos..]);
        session.write_tls_to(sock)?;
        read_plain(session, sock, scratch, |chunk| echo.echoed(chunk)).map_err(|e| echo.failed(e))?;
        if !echo.complete() {
            // What reading produced for the server (the client's Finished, and the message the
            // session held until then) leaves now: no other edge would announce it.
            echo.wpos += session.write_plaintext(&echo.msg[echo.wpos..]);
            session.write_tls_to(sock)?;
            return Ok(false);
        }
        session.send_close_notify();
        let _ = session.write_tls_to(sock);
        Ok(true)
    }
}
