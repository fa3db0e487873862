//! A server session's first moments: waiting for the whole ClientHello, so that the name the
//! client asks for (SNI) is checked before rustls takes over.
//!
//! Why: when no certificate answers a name, rustls's own path aborts with `access_denied`;
//! RFC 6066 (section 3) says `unrecognized_name`, which is what OpenSSL servers send and what
//! clients report as "unrecognized name". rustls's `Acceptor` shows the ClientHello first; a
//! refusal at that point is a plaintext alert record (no keys exist yet), written here.

use super::config::ServerTlsConfig;
use super::error::{Alert, TlsError, TlsErrorKind};
use rustls::server::{AcceptedAlert, Acceptor};
use rustls::{AlertDescription, ServerConnection, Side};
use std::io::{self, Read, Write};

/// The ClientHello is not whole yet.
pub(super) struct HelloWait {
    acceptor: Acceptor,
    config: ServerTlsConfig,
    /// Plaintext written before there is a connection to hold it (a server's `startTLS` may
    /// write at once); handed to the connection, to be encrypted after the handshake.
    pub early_plaintext: Vec<u8>,
}

/// What reading towards the ClientHello came to.
pub(super) enum HelloStep {
    /// Not whole yet: the socket said WouldBlock, or the budget ran out (`more`).
    Waiting { more: bool },
    /// EOF before the ClientHello was whole.
    Eof,
    /// The ClientHello is in and a certificate answers it: the connection, with the server's
    /// first flight queued.
    Accepted(ServerConnection),
    /// Refused: the error, and the alert to send.
    Refused(TlsError, Refusal),
}

impl HelloWait {
    pub fn new(config: &ServerTlsConfig) -> HelloWait {
        HelloWait { acceptor: Acceptor::default(), config: config.clone(), early_plaintext: Vec::new() }
    }

    pub fn read(&mut self, io: &mut dyn Read, budget: &mut usize) -> io::Result<HelloStep> {
        loop {
            if *budget == 0 {
                return Ok(HelloStep::Waiting { more: true });
            }
            match self.acceptor.read_tls(io) {
                Ok(0) => return Ok(HelloStep::Eof),
                Ok(n) => *budget = budget.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(HelloStep::Waiting { more: false }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let accepted = match self.acceptor.accept() {
                Ok(None) => continue,
                Ok(Some(accepted)) => accepted,
                Err((err, alert)) => {
                    return Ok(HelloStep::Refused(TlsError::from_rustls(err, Side::Server), Refusal::Rustls(alert)))
                }
            };
            if let Some(name) = accepted.client_hello().server_name() {
                if self.config.resolver.lookup(Some(name)).is_none() {
                    let error = TlsError {
                        kind: TlsErrorKind::Handshake,
                        alert: Some(Alert { description: AlertDescription::UnrecognisedName, received: false }),
                        detail: format!("no certificate for the server name {name:?} and no default"),
                    };
                    return Ok(HelloStep::Refused(error, Refusal::unrecognized_name()));
                }
            }
            return Ok(match accepted.into_connection(self.config.rustls.clone()) {
                Ok(conn) => HelloStep::Accepted(conn),
                Err((err, alert)) => {
                    HelloStep::Refused(TlsError::from_rustls(err, Side::Server), Refusal::Rustls(alert))
                }
            });
        }
    }
}

/// An alert still to be written after a refused ClientHello.
pub(super) enum Refusal {
    Rustls(AcceptedAlert),
    /// A fatal alert as a plaintext record, and how much of it is written.
    Record([u8; 7], usize),
    Sent,
}

impl Refusal {
    fn unrecognized_name() -> Refusal {
        // type alert (21), version TLS 1.2 (as rustls writes records before a version is
        // agreed), length 2, level fatal (2), description.
        Refusal::Record([21, 3, 3, 0, 2, 2, AlertDescription::UnrecognisedName.into()], 0)
    }

    pub fn pending(&self) -> bool {
        !matches!(self, Refusal::Sent)
    }

    /// Writes what is left; Ok(0) once all is sent.
    pub fn write(&mut self, io: &mut dyn Write) -> io::Result<usize> {
        let n = match self {
            Refusal::Rustls(alert) => alert.write(io)?,
            Refusal::Record(bytes, sent) => {
                let n = io.write(&bytes[*sent..])?;
                *sent += n;
                if *sent < bytes.len() {
                    return Ok(n);
                }
                n
            }
            Refusal::Sent => 0,
        };
        if n == 0 || matches!(self, Refusal::Record(..)) {
            *self = Refusal::Sent;
        }
        Ok(n)
    }
}
