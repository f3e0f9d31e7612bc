//! The hash maps and sets of the fold's hot path, keyed by identifiers from the log.
//!
//! foldhash instead of std's SipHash: a batch hashes every commit's session key several times
//! (references, folds, stored state, the carry), and SipHash was about 2.5% of the projector's
//! CPU. The hasher is still seeded at random per process, so colliding keys cannot be chosen in
//! advance by whoever picks session ids.

/// A `HashMap` hashed with foldhash.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A `HashSet` hashed with foldhash.
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
