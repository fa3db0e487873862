//! Admission control for a listening port: how many connections it may have open, how many from
//! one source, how fast it accepts. A port at its limit stops accepting (its listener leaves the
//! poller and clients wait in the kernel's backlog, as HAProxy's `maxconn` does) instead of
//! accepting and closing (what Node's `maxConnections` does). A client refused by the per-source
//! limit is accepted and closed at once: the backlog cannot tell sources apart.
//!
//! The per-source table has a fixed number of slots (open addressing), so a flood of sources
//! cannot grow it; a source that finds no slot is refused and counted (`table_full`).

use socket2::SockAddr;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A port's limits (all off by default).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Connections open at once; at the mark the port stops accepting until one closes.
    pub max_connections: Option<u32>,
    pub per_source: Option<PerSource>,
    /// Accepts per second, with a burst: past it the port pauses until a token is due.
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone, Copy)]
pub struct PerSource {
    /// Connections open at once from one source.
    pub max: u32,
    /// Bits of an IPv4 address that make a source (32: one address).
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 address that make a source (64: one /64, what one host usually has).
    pub ipv6_prefix: u8,
    /// Slots in the table (sources tracked at once).
    pub slots: usize,
}

impl Default for PerSource {
    fn default() -> Self {
        PerSource { max: u32::MAX, ipv4_prefix: 32, ipv6_prefix: 64, slots: 4096 }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// Why a client was refused (counted per reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerSource = 0,
    TableFull = 1,
}

/// Refusals by reason, for the port's statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub per_source: u64,
    pub table_full: u64,
    /// Times the port stopped accepting at `max_connections`.
    pub paused_at_max: u64,
    /// Times it paused for the accept rate.
    pub paused_for_rate: u64,
}

/// What a client counts against: its source slot (None when sources are not limited or the
/// client is not an IP).
pub type Ticket = Option<usize>;

#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    /// Connections from this port open now.
    pub active: u32,
    sources: Vec<Slot>,
    tokens: f64,
    refilled: Instant,
    pub refused: Refused,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u128,
    count: u32,
}

/// What the port should do about accepting.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// At `max_connections`: stop until a connection closes.
    Full,
    /// Out of accept tokens: try again at this time.
    Until(Instant),
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        let slots = limits.per_source.map_or(0, |p| p.slots.clamp(1, 1 << 20));
        let tokens = limits.rate.map_or(0.0, |r| r.burst.max(1.0));
        Admission { limits, active: 0, sources: vec![Slot::default(); slots], tokens, refilled: Instant::now(), refused: Refused::default() }
    }

    /// Whether the port may accept one more client now.
    pub fn gate(&mut self) -> Gate {
        if self.limits.max_connections.is_some_and(|max| self.active >= max) {
            self.refused.paused_at_max += 1;
            return Gate::Full;
        }
        if let Some(rate) = self.limits.rate {
            let now = Instant::now();
            let per_second = rate.per_second.max(f64::MIN_POSITIVE);
            self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * per_second).min(rate.burst.max(1.0));
            self.refilled = now;
            if self.tokens < 1.0 {
                self.refused.paused_for_rate += 1;
                let wait = Duration::try_from_secs_f64((1.0 - self.tokens) / per_second).unwrap_or(Duration::from_secs(1));
                return Gate::Until(now + wait.max(Duration::from_millis(1)));
            }
        }
        Gate::Open
    }

    /// Counts an accepted client in, or refuses it by its source.
    pub fn admit(&mut self, peer: &SockAddr) -> Result<Ticket, Refusal> {
        let ticket = match (self.limits.per_source, source_key(peer, &self.limits)) {
            (Some(per), Some(key)) => {
                let slot = self.slot_for(key).ok_or(Refusal::TableFull).inspect_err(|_| self.refused.table_full += 1)?;
                if self.sources[slot].count >= per.max {
                    self.refused.per_source += 1;
                    return Err(Refusal::PerSource);
                }
                self.sources[slot] = Slot { key, count: self.sources[slot].count + 1 };
                Some(slot)
            }
            _ => None,
        };
        if self.limits.rate.is_some() {
            self.tokens -= 1.0;
        }
        self.active += 1;
        Ok(ticket)
    }

    /// A connection admitted with `ticket` closed. True when the port had stopped at
    /// `max_connections` and may accept again.
    pub fn release(&mut self, ticket: Ticket) -> bool {
        let was_full = self.limits.max_connections.is_some_and(|max| self.active >= max);
        self.active = self.active.saturating_sub(1);
        if let Some(slot) = ticket {
            if let Some(s) = self.sources.get_mut(slot) {
                s.count = s.count.saturating_sub(1);
            }
        }
        was_full && self.limits.max_connections.is_some_and(|max| self.active < max)
    }

    /// The slot holding `key`, or a free one for it (linear probing over a few slots; a slot whose
    /// count fell to 0 is free).
    fn slot_for(&self, key: u128) -> Option<usize> {
        let n = self.sources.len();
        let start = (hash(key) as usize) % n;
        let mut free = None;
        for i in 0..n.min(16) {
            let at = (start + i) % n;
            let s = self.sources[at];
            if s.count > 0 && s.key == key {
                return Some(at);
            }
            if s.count == 0 && free.is_none() {
                free = Some(at);
            }
        }
        free
    }
}

/// The source a peer counts as: its address cut to the configured prefix (v4 mapped into v6's
/// space, so the two never collide). None for a non-IP peer.
fn source_key(peer: &SockAddr, limits: &Limits) -> Option<u128> {
    let per = limits.per_source?;
    let ip = peer.as_socket().map(|a: SocketAddr| a.ip())?;
    Some(match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4) as u128;
            let keep = per.ipv4_prefix.min(32) as u32;
            let masked = if keep == 0 { 0 } else { bits & (((1u128 << keep) - 1) << (32 - keep)) };
            masked | (0xffffu128 << 32)
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let keep = per.ipv6_prefix.min(128) as u32;
            if keep == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - keep))
            }
        }
    })
}

/// A cheap, keyed-nowhere mix (the table's size bounds an attacker's effect: a collision costs a
/// probe, a full neighbourhood costs a refusal that is counted).
fn hash(key: u128) -> u64 {
    let x = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SockAddr {
        SockAddr::from(s.parse::<SocketAddr>().unwrap())
    }

    #[test]
    fn the_mark_stops_accepting_until_a_connection_closes() {
        let mut a = Admission::new(Limits { max_connections: Some(2), ..Limits::default() });
        let t1 = a.admit(&addr("127.0.0.1:1")).unwrap();
        assert_eq!(a.gate(), Gate::Open);
        a.admit(&addr("127.0.0.1:2")).unwrap();
        assert_eq!(a.gate(), Gate::Full);
        assert!(a.release(t1), "below the mark again: resume");
        assert_eq!(a.gate(), Gate::Open);
        assert_eq!(a.refused.paused_at_max, 1);
    }

    #[test]
    fn one_source_is_limited_by_its_prefix() {
        let per = PerSource { max: 2, ..PerSource::default() };
        let mut a = Admission::new(Limits { per_source: Some(per), ..Limits::default() });
        let first = a.admit(&addr("10.0.0.1:1")).unwrap();
        a.admit(&addr("10.0.0.1:2")).unwrap();
        assert_eq!(a.admit(&addr("10.0.0.1:3")), Err(Refusal::PerSource));
        a.admit(&addr("10.0.0.2:1")).expect("another address is another source");
        // IPv6: one /64 is one source.
        a.admit(&addr("[2001:db8::1]:1")).unwrap();
        a.admit(&addr("[2001:db8::2]:1")).unwrap();
        assert_eq!(a.admit(&addr("[2001:db8::3]:1")), Err(Refusal::PerSource));
        a.release(first);
        a.admit(&addr("10.0.0.1:4")).expect("a slot is free again after a close");
        assert_eq!(a.refused.per_source, 2);
    }

    #[test]
    fn the_table_never_grows_and_counts_what_finds_no_slot() {
        let per = PerSource { max: 1, slots: 8, ..PerSource::default() };
        let mut a = Admission::new(Limits { per_source: Some(per), ..Limits::default() });
        let mut refused = 0;
        for i in 0..1000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            if a.admit(&SockAddr::from(SocketAddr::new(ip.into(), 1))).is_err() {
                refused += 1;
            }
        }
        assert_eq!(a.sources.len(), 8);
        assert_eq!(refused, 1000 - 8);
        assert_eq!(a.refused.table_full, 992);
    }

    #[test]
    fn the_rate_pauses_accepting_until_a_token_is_due() {
        let mut a = Admission::new(Limits { rate: Some(Rate { per_second: 10.0, burst: 2.0 }), ..Limits::default() });
        for _ in 0..2 {
            assert_eq!(a.gate(), Gate::Open);
            a.admit(&addr("127.0.0.1:1")).unwrap();
        }
        match a.gate() {
            Gate::Until(at) => assert!(at > Instant::now() && at < Instant::now() + Duration::from_millis(150)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unix_peers_are_not_limited_by_source() {
        let per = PerSource { max: 1, ..PerSource::default() };
        let mut a = Admission::new(Limits { per_source: Some(per), ..Limits::default() });
        let unix = SockAddr::unix("/tmp/x").unwrap();
        assert_eq!(a.admit(&unix), Ok(None));
        assert_eq!(a.admit(&unix), Ok(None));
    }
}
