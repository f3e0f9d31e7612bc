//! Payload of the payer rules aggregate: a new version of one payer's billing rules.

use rkyv::{Archive, Deserialize, Serialize};

use crate::ids::PayerId;
use crate::time::EpochDay;

/// A payer's billing rules changed: the full TOML text of the new version, addressed by its hash.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RulesChanged {
    /// The payer whose rules these are.
    pub payer: PayerId,
    /// The rules version, increasing by one per change of this payer's rules.
    pub version: u32,
    /// The first calendar day (in the chain's business calendar) on which these rules price sessions.
    pub effective_from: EpochDay,
    /// The rules document exactly as accepted.
    pub rules_toml: String,
    /// SHA-256 of `rules_toml`'s UTF-8 bytes, so a reader can check it received the accepted text.
    pub content_sha256: [u8; 32],
}
