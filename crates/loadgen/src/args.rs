//! Hand-rolled argument parsing for both binaries (no clap: the crate stays dependency-light).
//!
//! Flags take their value as the next argument or after `=` (`--conns 8`, `--conns=8`).

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

pub const LOADGEN_USAGE: &str = "\
usage: loadgen <stream|pingpong|connect|udp|http|proxy|proxy-connect|tls-stream|tls-connect>
               --addr HOST:PORT [--duration-ms 3000] [--warmup-ms 300]
               [--conns N] [--size BYTES] [--inflight N] [--gso]
               [--ca FILE] [--server-name NAME] [--resume]

defaults per workload:
  stream    --conns 16 --size 16384 --inflight 4   (messages in flight per connection)
  pingpong  --conns 32 --size 64                   (one message in flight per connection)
  connect   --conns 32 --size 64                   (concurrent connect/echo/close loops)
  udp       --conns 1  --size 64    --inflight 64  (datagrams in flight per socket; size >= 8)
            --gso: send each batch as one UDP_SEGMENT (GSO) buffer, receive with UDP_GRO
  http      --conns 32 --size 64                   (HTTP/1.1 keep-alive GETs, one in flight per
                                                    connection; the server answers each with its
                                                    URL, which is padded to --size bytes)
  proxy          = stream  through an echoing proxy (--addr is the proxy)
  proxy-connect  = connect through an echoing proxy (each connection makes it connect upstream)
  tls-stream     = stream  over TLS (rustls, the core's TLS engine): --ca FILE (PEM) is required,
                   --server-name (default localhost) is sent and verified
  tls-connect    = connect over TLS: each connection a full handshake, or with --resume a
                   resumed one (sessions kept across connections); close_notify before the close

the JSON line includes the load generator's own CPU over the measured window
(cpu_s, and cpu_share: 1.0 = one whole core; the load generator thread alone).

prints one JSON line on stdout; exit status 0 = clean run, 1 = errors or incomplete run, 2 = usage";

pub const SERVER_USAGE: &str = "\
usage: echo-server [--tcp-fd N] [--udp-fd N] [--ignore-stdin]

N is an inherited, bound socket (the TCP one already listening). The server stops when its
stdin reaches EOF (the parent closes the pipe) or on SIGTERM/SIGINT. --ignore-stdin disables
the stdin watch (for running it by hand).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Stream,
    Pingpong,
    Connect,
    Udp,
    Http,
    Proxy,
    ProxyConnect,
    TlsStream,
    TlsConnect,
}

impl Workload {
    pub fn parse(s: &str) -> Option<Workload> {
        match s {
            "stream" => Some(Workload::Stream),
            "pingpong" => Some(Workload::Pingpong),
            "connect" => Some(Workload::Connect),
            "udp" => Some(Workload::Udp),
            "http" => Some(Workload::Http),
            "proxy" => Some(Workload::Proxy),
            "proxy-connect" => Some(Workload::ProxyConnect),
            "tls-stream" => Some(Workload::TlsStream),
            "tls-connect" => Some(Workload::TlsConnect),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Stream => "stream",
            Workload::Pingpong => "pingpong",
            Workload::Connect => "connect",
            Workload::Udp => "udp",
            Workload::Http => "http",
            Workload::Proxy => "proxy",
            Workload::ProxyConnect => "proxy-connect",
            Workload::TlsStream => "tls-stream",
            Workload::TlsConnect => "tls-connect",
        }
    }

    /// Unit of the reported `rate`.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::Stream | Workload::Proxy | Workload::TlsStream => "MB/s",
            Workload::Pingpong => "rt/s",
            Workload::Connect | Workload::ProxyConnect | Workload::TlsConnect => "conn/s",
            Workload::Udp => "dgram/s",
            Workload::Http => "req/s",
        }
    }

    /// Default (conns, size, inflight).
    fn defaults(self) -> (usize, usize, usize) {
        match self {
            Workload::Stream | Workload::Proxy | Workload::TlsStream => (16, 16384, 4),
            Workload::Pingpong | Workload::Http => (32, 64, 1),
            Workload::Connect | Workload::ProxyConnect | Workload::TlsConnect => (32, 64, 1),
            Workload::Udp => (1, 64, 64),
        }
    }
}

/// A complete load-generator run description.
#[derive(Debug, Clone)]
pub struct Config {
    pub workload: Workload,
    pub addr: SocketAddr,
    pub warmup: Duration,
    pub duration: Duration,
    /// Time allowed after the measured window to collect in-flight echoes before the
    /// run is declared incomplete (the hard deadline is warmup + duration + grace).
    /// Not a CLI flag: fixed at 2 s there; tests shorten it.
    pub grace: Duration,
    pub conns: usize,
    pub size: usize,
    pub inflight: usize,
    /// UDP only: send with `UDP_SEGMENT` (GSO), receive with `UDP_GRO`.
    pub gso: bool,
    /// TLS workloads: the CA bundle (PEM file) the server's certificate must chain to.
    pub ca: Option<std::path::PathBuf>,
    /// TLS workloads: the name sent (SNI) and verified.
    pub server_name: String,
    /// tls-connect: resume sessions (a session cache across connections) instead of full
    /// handshakes.
    pub resume: bool,
}

impl Workload {
    /// A workload over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Workload::TlsStream | Workload::TlsConnect)
    }
}

impl Config {
    /// A config with the workload's defaults (what the CLI gives without options).
    pub fn new(workload: Workload, addr: SocketAddr) -> Config {
        let (conns, size, inflight) = workload.defaults();
        Config {
            workload,
            addr,
            warmup: Duration::from_millis(300),
            duration: Duration::from_millis(3000),
            grace: Duration::from_secs(2),
            conns,
            size,
            inflight,
            gso: false,
            ca: None,
            server_name: "localhost".into(),
            resume: false,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.duration.is_zero() {
            return Err("--duration-ms must be > 0".into());
        }
        if !(1..=10_000).contains(&self.conns) {
            return Err("--conns must be in 1..=10000".into());
        }
        if self.inflight == 0 || self.inflight > 65_536 {
            return Err("--inflight must be in 1..=65536".into());
        }
        if self.gso && self.workload != Workload::Udp {
            return Err("--gso applies to the udp workload only".into());
        }
        if self.workload.is_tls() && self.ca.is_none() {
            return Err("TLS workloads need --ca FILE".into());
        }
        if self.resume && self.workload != Workload::TlsConnect {
            return Err("--resume applies to tls-connect only".into());
        }
        match self.workload {
            // 8 bytes of sequence number, and the largest UDP payload over IPv4.
            Workload::Udp if !(8..=65_507).contains(&self.size) => {
                Err("udp --size must be in 8..=65507".into())
            }
            _ if !(1..=16 << 20).contains(&self.size) => {
                Err("--size must be in 1..=16777216".into())
            }
            _ => Ok(()),
        }
    }
}

/// Walks `--name=value` / `--name value` flags.
struct Flags<I: Iterator<Item = String>> {
    args: I,
}

impl<I: Iterator<Item = String>> Flags<I> {
    /// Next flag name and its inline value (`--x=1`), if any.
    fn next_flag(&mut self) -> Option<Result<(String, Option<String>), String>> {
        let arg = self.args.next()?;
        if !arg.starts_with("--") {
            return Some(Err(format!("unexpected argument {arg:?}")));
        }
        Some(Ok(match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg, None),
        }))
    }

    fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, String> {
        inline
            .or_else(|| self.args.next())
            .ok_or_else(|| format!("{name} needs a value"))
    }
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: {v:?} is not a valid number"))
}

/// Parses `loadgen` arguments (without the program name). `Err("")` means help was asked.
pub fn parse_loadgen(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut it = args.into_iter();
    let first = it.next().ok_or("missing workload")?;
    if first == "-h" || first == "--help" {
        return Err(String::new());
    }
    let workload = Workload::parse(&first).ok_or_else(|| format!("unknown workload {first:?}"))?;
    let mut addr = None;
    let mut opts: Vec<(String, String)> = Vec::new();
    let mut flags = Flags { args: it };
    while let Some(flag) = flags.next_flag() {
        let (name, inline) = flag?;
        if name == "--help" {
            return Err(String::new());
        }
        if (name == "--gso" || name == "--resume") && inline.is_none() {
            opts.push((name, String::new()));
            continue;
        }
        let v = flags.value(&name, inline)?;
        if name == "--addr" {
            addr = Some(
                v.parse::<SocketAddr>()
                    .map_err(|_| format!("--addr: {v:?} is not HOST:PORT"))?,
            );
        } else {
            opts.push((name, v));
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    let mut c = Config::new(workload, addr);
    for (name, v) in opts {
        match name.as_str() {
            "--duration-ms" => c.duration = Duration::from_millis(number(&name, &v)?),
            "--warmup-ms" => c.warmup = Duration::from_millis(number(&name, &v)?),
            "--conns" => c.conns = number(&name, &v)?,
            "--size" => c.size = number(&name, &v)?,
            "--inflight" => c.inflight = number(&name, &v)?,
            "--gso" => c.gso = true,
            "--resume" => c.resume = true,
            "--ca" => c.ca = Some(v.into()),
            "--server-name" => c.server_name = v,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    c.validate()?;
    Ok(c)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServerArgs {
    pub tcp_fd: Option<RawFd>,
    pub udp_fd: Option<RawFd>,
    pub ignore_stdin: bool,
}

/// Parses `echo-server` arguments (without the program name). `Err("")` means help was asked.
pub fn parse_server(args: impl IntoIterator<Item = String>) -> Result<ServerArgs, String> {
    let mut out = ServerArgs::default();
    let mut flags = Flags {
        args: args.into_iter(),
    };
    while let Some(flag) = flags.next_flag() {
        let (name, inline) = flag?;
        match name.as_str() {
            "--help" => return Err(String::new()),
            "--ignore-stdin" => out.ignore_stdin = true,
            "--tcp-fd" => out.tcp_fd = Some(number(&name, &flags.value(&name, inline)?)?),
            "--udp-fd" => out.udp_fd = Some(number(&name, &flags.value(&name, inline)?)?),
            _ => return Err(format!("unknown option {name}")),
        }
    }
    for fd in [out.tcp_fd, out.udp_fd].into_iter().flatten() {
        // 0..2 are stdio: taking ownership of them as sockets would be a caller mistake.
        if fd < 3 {
            return Err(format!(
                "fd {fd} is a stdio descriptor, not an inherited socket"
            ));
        }
    }
    if out.tcp_fd.is_none() && out.udp_fd.is_none() {
        return Err("give --tcp-fd and/or --udp-fd".into());
    }
    if out.tcp_fd.is_some() && out.tcp_fd == out.udp_fd {
        return Err("--tcp-fd and --udp-fd must differ".into());
    }
    Ok(out)
}

pub const PROXY_USAGE: &str = "\
usage: splice-proxy --tcp-fd N --upstream HOST:PORT [--ignore-stdin]

N is an inherited, listening TCP socket. Every client connection gets its own upstream
connection to HOST:PORT, and bytes move between the two with splice(2) (no copy through
user space). Stops like echo-server: on stdin EOF or SIGTERM/SIGINT.";

#[derive(Debug, PartialEq, Eq)]
pub struct ProxyArgs {
    pub tcp_fd: RawFd,
    pub upstream: SocketAddr,
    pub ignore_stdin: bool,
}

/// Parses `splice-proxy` arguments (without the program name). `Err("")` means help was asked.
pub fn parse_proxy(args: impl IntoIterator<Item = String>) -> Result<ProxyArgs, String> {
    let (mut tcp_fd, mut upstream, mut ignore_stdin) = (None, None, false);
    let mut flags = Flags {
        args: args.into_iter(),
    };
    while let Some(flag) = flags.next_flag() {
        let (name, inline) = flag?;
        match name.as_str() {
            "--help" => return Err(String::new()),
            "--ignore-stdin" => ignore_stdin = true,
            "--tcp-fd" => tcp_fd = Some(number::<RawFd>(&name, &flags.value(&name, inline)?)?),
            "--upstream" => {
                let v = flags.value(&name, inline)?;
                upstream = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|_| format!("--upstream: {v:?} is not HOST:PORT"))?,
                );
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    let tcp_fd = tcp_fd.ok_or("--tcp-fd is required")?;
    if tcp_fd < 3 {
        return Err(format!(
            "fd {tcp_fd} is a stdio descriptor, not an inherited socket"
        ));
    }
    Ok(ProxyArgs {
        tcp_fd,
        upstream: upstream.ok_or("--upstream is required")?,
        ignore_stdin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn loadgen_defaults_and_overrides() {
        let c = parse_loadgen(args("stream --addr 127.0.0.1:9")).unwrap();
        assert_eq!((c.conns, c.size, c.inflight), (16, 16384, 4));
        assert_eq!(c.duration, Duration::from_millis(3000));
        assert_eq!(c.warmup, Duration::from_millis(300));
        let c = parse_loadgen(args(
            "udp --size=1200 --addr 127.0.0.1:9 --duration-ms 1000 --warmup-ms=0",
        ))
        .unwrap();
        assert_eq!(
            (c.workload, c.conns, c.size, c.inflight),
            (Workload::Udp, 1, 1200, 64)
        );
        assert_eq!(c.warmup, Duration::ZERO);
        let c = parse_loadgen(args("pingpong --conns 1 --addr [::1]:80")).unwrap();
        assert_eq!((c.conns, c.size), (1, 64));
    }

    #[test]
    fn loadgen_rejects_bad_input() {
        for bad in [
            "",
            "bogus --addr 127.0.0.1:9",
            "stream",
            "stream --addr nowhere",
            "stream --addr 127.0.0.1:9 --conns",
            "stream --addr 127.0.0.1:9 --conns 0",
            "stream --addr 127.0.0.1:9 --frobnicate 1",
            "udp --addr 127.0.0.1:9 --size 4",
            "stream --addr 127.0.0.1:9 --duration-ms 0",
            "stream --addr 127.0.0.1:9 extra",
        ] {
            assert!(parse_loadgen(args(bad)).is_err(), "accepted {bad:?}");
        }
        assert_eq!(parse_loadgen(args("--help")).unwrap_err(), "");
    }

    #[test]
    fn loadgen_new_workloads_and_gso() {
        let c = parse_loadgen(args("udp --gso --addr 127.0.0.1:9")).unwrap();
        assert!(c.gso);
        assert!(!parse_loadgen(args("udp --addr 127.0.0.1:9")).unwrap().gso);
        assert!(parse_loadgen(args("stream --gso --addr 127.0.0.1:9")).is_err());
        let c = parse_loadgen(args("http --addr 127.0.0.1:9")).unwrap();
        assert_eq!((c.workload, c.conns, c.size), (Workload::Http, 32, 64));
        let c = parse_loadgen(args("proxy --addr 127.0.0.1:9")).unwrap();
        assert_eq!((c.conns, c.size, c.workload.unit()), (16, 16384, "MB/s"));
        let c = parse_loadgen(args("proxy-connect --addr 127.0.0.1:9")).unwrap();
        assert_eq!((c.conns, c.workload.name()), (32, "proxy-connect"));
    }

    #[test]
    fn loadgen_tls_workloads() {
        let c = parse_loadgen(args("tls-connect --addr 127.0.0.1:9 --ca ca.pem --resume")).unwrap();
        assert_eq!((c.workload, c.conns, c.resume, c.server_name.as_str()), (Workload::TlsConnect, 32, true, "localhost"));
        assert_eq!(c.ca.as_deref(), Some(std::path::Path::new("ca.pem")));
        let c = parse_loadgen(args("tls-stream --addr 127.0.0.1:9 --ca=ca.pem --server-name x.test")).unwrap();
        assert_eq!((c.workload.unit(), c.size, c.server_name.as_str()), ("MB/s", 16384, "x.test"));
        assert!(parse_loadgen(args("tls-stream --addr 127.0.0.1:9")).is_err(), "--ca is required");
        assert!(parse_loadgen(args("tls-stream --addr 127.0.0.1:9 --ca c --resume")).is_err());
    }

    #[test]
    fn proxy_args() {
        let a = parse_proxy(args("--tcp-fd 3 --upstream 127.0.0.1:8080")).unwrap();
        assert_eq!(a.tcp_fd, 3);
        assert_eq!(a.upstream, "127.0.0.1:8080".parse().unwrap());
        assert!(!a.ignore_stdin);
        for bad in [
            "",
            "--tcp-fd 3",
            "--upstream 127.0.0.1:1",
            "--tcp-fd 1 --upstream 127.0.0.1:1",
            "--tcp-fd 3 --upstream nowhere",
            "--tcp-fd 3 --upstream 127.0.0.1:1 --udp-fd 4",
        ] {
            assert!(parse_proxy(args(bad)).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn server_args() {
        let a = parse_server(args("--tcp-fd 3 --udp-fd=4")).unwrap();
        assert_eq!(
            a,
            ServerArgs {
                tcp_fd: Some(3),
                udp_fd: Some(4),
                ignore_stdin: false
            }
        );
        assert!(parse_server(args("")).is_err());
        assert!(parse_server(args("--tcp-fd 0")).is_err());
        assert!(parse_server(args("--tcp-fd 5 --udp-fd 5")).is_err());
        assert!(parse_server(args("--tcp-fd x")).is_err());
    }
}
