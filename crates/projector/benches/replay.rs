//! Replay benchmark (being written).

fn main() {}
