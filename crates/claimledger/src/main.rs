//! The `claimledger` binary.

fn main() {}
