//! Maps and sets keyed by the core's own ids (entries, relays). FxHash (`rustc-hash`, which the
//! binding's napi already builds) costs a multiply per lookup where SipHash costs rounds, and
//! several lookups happen per event. Nothing a peer sends picks these keys, so no guard against
//! flooding is needed; maps keyed by what a peer chooses (a UDP client's address) keep SipHash.

pub type IdMap<V> = rustc_hash::FxHashMap<u32, V>;
pub type IdSet = rustc_hash::FxHashSet<u32>;
