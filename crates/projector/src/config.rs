//! The projector's settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ProjectorError;

/// The schema holding the live read models.
pub const LIVE_SCHEMA: &str = "read_models";
/// The schema a rebuild fills before it is swapped in.
pub const REBUILD_SCHEMA: &str = "read_models_rebuild";

/// How the projector runs. The live projector folds the whole log into [`LIVE_SCHEMA`]; a rebuild
/// uses the batch size and the rules directory.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// The most commits applied in one transaction.
    pub max_batch_commits: usize,
    /// The longest a batch waits for more commits once it has one.
    pub max_batch_wait: Duration,
    /// How long a caught-up projector waits for a new commit before reporting idle.
    pub idle_wait: Duration,
    /// The directory holding `reference/` (NCCI PTP, MUE, always-therapy), usually the repo's `rules/`.
    pub rules_dir: PathBuf,
    /// How many log positions a projector may trail the log's head by and still answer `/ready`
    /// when it has not yet caught up with the head as of its start (see [`crate::http`]).
    pub ready_max_lag: u64,
}

impl ProjectorConfig {
    /// The live projector over the whole log, with batches of up to 20000 commits or 50 ms.
    ///
    /// A caught-up projector's batches are small (what arrived within 50 ms). Catching up, bigger
    /// batches cost less per event: fewer sessions span two batches (each such session is read
    /// back and rewritten) and each batch rewrites the unit totals of the days it touches once.
    /// With the read-ahead, two batches of commits are in memory at most (about 80 MB at 20000).
    pub fn live(rules_dir: PathBuf) -> Self {
        Self {
            max_batch_commits: 20_000,
            max_batch_wait: Duration::from_millis(50),
            idle_wait: Duration::from_millis(200),
            rules_dir,
            ready_max_lag: 1_000,
        }
    }

    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), ProjectorError> {
        if self.max_batch_commits == 0 {
            return Err(ProjectorError::InvalidConfig {
                field: "max_batch_commits",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}
