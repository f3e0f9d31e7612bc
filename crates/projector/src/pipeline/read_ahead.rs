//! Reading the log ahead of the applier.

use claimledger_events::ReplayItem;
use claimledger_log::{EventLog, LogError, ReplayFilter};
use futures::StreamExt;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::task::JoinHandle;

/// Reads the log ahead of the applier in a background task, so that reading the next batch
/// overlaps with writing the current one. Bounded: about one batch waits in the channel (with the
/// batch being applied, two batches of commits are in memory at most).
///
/// The task hands over what the log has delivered in chunks of up to [`READ_CHUNK`] positions, not
/// one at a time: while catching up the channel is full, and a per-position handover woke the
/// reading task once per commit (millions of wake-ups per replay) to refill one slot.
#[derive(Debug)]
pub(super) struct ReadAhead {
    receiver: mpsc::Receiver<Vec<Result<ReplayItem, LogError>>>,
    /// The rest of the chunk received last; taken before the next chunk.
    chunk: std::vec::IntoIter<Result<ReplayItem, LogError>>,
    task: JoinHandle<()>,
}

/// The most positions one handover from the reading task carries. Small enough that a projector
/// following the head of the log gets each commit as soon as it is read (a chunk never waits to
/// fill: it holds what had arrived), large enough that the handover costs nothing per commit.
const READ_CHUNK: usize = 256;

/// What [`ReadAhead::try_next`] found without waiting.
pub(super) enum Buffered {
    Item(Result<ReplayItem, LogError>),
    Empty,
    Closed,
}

impl ReadAhead {
    pub(super) async fn open(log: &EventLog, from: u64, batch: usize) -> Result<Self, LogError> {
        let replay = log.follow(from, ReplayFilter::All).await?;
        let (sender, receiver) = mpsc::channel(batch.div_ceil(READ_CHUNK).max(1));
        let task = tokio::spawn(async move {
            // Every chunk holds at least one position; an error is always the last of its chunk,
            // because it ends the replay.
            let mut chunks = replay.ready_chunks(READ_CHUNK);
            while let Some(chunk) = chunks.next().await {
                let failed = chunk.last().is_some_and(Result::is_err);
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Self {
            receiver,
            chunk: Vec::new().into_iter(),
            task,
        })
    }

    /// The next position, waiting for the reading task if nothing is buffered; `None` once the
    /// reading task has stopped. Cancel-safe: a position is taken only when it is returned.
    pub(super) async fn next(&mut self) -> Option<Result<ReplayItem, LogError>> {
        loop {
            if let Some(item) = self.chunk.next() {
                return Some(item);
            }
            self.chunk = self.receiver.recv().await?.into_iter();
        }
    }

    /// The next position if one is already read.
    pub(super) fn try_next(&mut self) -> Buffered {
        loop {
            if let Some(item) = self.chunk.next() {
                return Buffered::Item(item);
            }
            match self.receiver.try_recv() {
                Ok(chunk) => self.chunk = chunk.into_iter(),
                Err(TryRecvError::Empty) => return Buffered::Empty,
                Err(TryRecvError::Disconnected) => return Buffered::Closed,
            }
        }
    }

    /// About how many positions are read and waiting (whole chunks counted as full).
    pub(super) fn buffered(&self) -> usize {
        self.chunk.len() + self.receiver.len() * READ_CHUNK
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
