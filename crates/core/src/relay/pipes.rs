//! Emptied pipes kept for the next relay, instead of two new descriptors per relay.

use crate::sys::pipe::Pipe;
use std::io;

/// Pipes kept for reuse at most (two descriptors each): enough for a proxy's short connections
/// to find one ready (64 relays ending and starting in a burst), few enough to cost nothing idle.
const POOL_MAX: usize = 128;

/// Emptied pipes kept for the next relay.
#[derive(Debug, Default)]
pub struct PipePool {
    pipes: Vec<Pipe>,
}

impl PipePool {
    pub fn take(&mut self, capacity: usize) -> io::Result<Pipe> {
        match self.pipes.pop() {
            Some(mut p) => {
                p.resize(capacity);
                Ok(p)
            }
            None => Pipe::new(capacity),
        }
    }

    /// Keeps an empty pipe for reuse (a pipe that still holds bytes is closed instead).
    pub fn give_back(&mut self, pipe: Pipe, empty: bool) {
        if empty && self.pipes.len() < POOL_MAX {
            self.pipes.push(pipe);
        }
    }

    /// Pipes waiting for reuse.
    pub fn pooled(&self) -> usize {
        self.pipes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_only_empty_pipes() {
        let mut pool = PipePool::default();
        let p = pool.take(8192).unwrap();
        pool.give_back(p, true);
        assert_eq!(pool.pooled(), 1);
        let p = pool.take(8192).unwrap();
        pool.give_back(p, false);
        assert_eq!(pool.pooled(), 0, "a pipe that still holds bytes is closed");
    }
}
