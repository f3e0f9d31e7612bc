//! The NCCI PTP, MUE and always-therapy tables the derivation prices claims with, read from a rules
//! directory at start-up.

use std::path::Path;

use claimledger_billing::ReferenceData;
use claimledger_events::error_chain;
use claimledger_payer_rules::load_dir;

use crate::error::ProjectorError;

/// Reads the NCCI PTP, MUE and always-therapy tables of a rules directory (`rules_dir/reference/`).
///
/// The payer-rules service does not publish these reference tables on the log yet, so the projector
/// reads them from the repository at start-up.
pub fn read_reference(rules_dir: &Path) -> Result<ReferenceData, ProjectorError> {
    load_dir(rules_dir)
        .map(|book| book.reference().clone())
        .map_err(|error| ProjectorError::Reference {
            dir: rules_dir.display().to_string(),
            reason: error_chain(&error),
        })
}
