//! Time values as they are archived on the log: UTC instants in microseconds and calendar days.
//!
//! The log stores plain integers so that the archived format depends on no date library; the billing
//! core converts them to `chrono` types at its boundary.

use rkyv::{Archive, Deserialize, Serialize};

/// An instant in UTC, as microseconds since 1970-01-01T00:00:00Z.
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[rkyv(derive(Debug))]
pub struct UtcMicros(pub i64);

/// A calendar date with no time zone, as days since 1970-01-01 (day 0).
///
/// Used for dates that are dates in the business sense, such as the day a payer's rules take effect.
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[rkyv(derive(Debug))]
pub struct EpochDay(pub i32);
