//! Which upstream a new session goes to: round robin, or the one with the fewest sessions open
//! (ties go round robin), as HAProxy's `balance roundrobin` / `leastconn`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastConnections,
}

/// The balance's state for one port: the next turn and the sessions open per upstream.
#[derive(Debug, Default)]
pub struct Balancer {
    next: usize,
    pub active: Vec<u32>,
    /// Connect failures per upstream (its statistics).
    pub failures: Vec<u64>,
}

impl Balancer {
    pub fn new(upstreams: usize) -> Balancer {
        Balancer { next: 0, active: vec![0; upstreams], failures: vec![0; upstreams] }
    }

    /// The upstream for a new session, skipping those in `tried`.
    pub fn pick(&mut self, how: Balance, tried: &[usize]) -> Option<usize> {
        let n = self.active.len();
        let candidates = (0..n).map(|i| (self.next + i) % n).filter(|i| !tried.contains(i));
        let chosen = match how {
            Balance::RoundRobin => candidates.into_iter().next(),
            Balance::LeastConnections => candidates.min_by_key(|&i| self.active[i]),
        }?;
        self.next = (chosen + 1) % n;
        Some(chosen)
    }

    pub fn opened(&mut self, upstream: usize) {
        if let Some(a) = self.active.get_mut(upstream) {
            *a += 1;
        }
    }

    pub fn closed(&mut self, upstream: usize) {
        if let Some(a) = self.active.get_mut(upstream) {
            *a = a.saturating_sub(1);
        }
    }

    pub fn failed(&mut self, upstream: usize) {
        if let Some(f) = self.failures.get_mut(upstream) {
            *f += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_takes_turns_and_skips_what_was_tried() {
        let mut b = Balancer::new(3);
        let picks: Vec<_> = (0..4).map(|_| b.pick(Balance::RoundRobin, &[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        assert_eq!(b.pick(Balance::RoundRobin, &[1, 2]), Some(0));
        assert_eq!(b.pick(Balance::RoundRobin, &[0, 1, 2]), None);
    }

    #[test]
    fn least_connections_prefers_the_idlest() {
        let mut b = Balancer::new(3);
        b.opened(0);
        b.opened(0);
        b.opened(1);
        assert_eq!(b.pick(Balance::LeastConnections, &[]), Some(2));
        b.opened(2);
        b.opened(2);
        assert_eq!(b.pick(Balance::LeastConnections, &[]), Some(1));
        assert_eq!(Balancer::new(0).pick(Balance::LeastConnections, &[]), None);
    }
}
