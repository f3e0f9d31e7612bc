//! The claim aggregate: its state, the fold that rebuilds it from events, and the decisions that
//! turn a command into new events or a refusal.
//!
//! Statuses: `draft → submitted → paid | denied`; `denied → resubmitted → paid | denied`; a
//! corrected remittance may adjudicate a `paid` or `denied` claim again (the latest remittance
//! counts); `submitted | resubmitted | paid | denied → written_off` while a balance is unpaid,
//! and a written-off claim is final.

use std::fmt;

use chrono::NaiveDate;
use claimledger_events::{PayerId, SessionId};

use crate::command::{ClaimCommand, DecisionContext, LineInput};
use crate::error::ClaimError;
use crate::event::{Adjudication, ClaimEvent, ClaimLine};
use crate::remittance::{RemittanceWindow, required_text, validate_lines, validate_remittance};

/// Where a claim is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClaimStatus {
    /// Derived, not sent.
    #[default]
    Draft,
    /// Sent, not adjudicated.
    Submitted,
    /// Adjudicated with a payment (or a share assigned to the patient).
    Paid,
    /// Adjudicated with nothing paid and nothing assigned to the patient.
    Denied,
    /// Sent again after a denial, not adjudicated since.
    Resubmitted,
    /// The unpaid balance was written off (final).
    WrittenOff,
}

impl ClaimStatus {
    /// The status as the API and the read models spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Draft => "draft",
            ClaimStatus::Submitted => "submitted",
            ClaimStatus::Paid => "paid",
            ClaimStatus::Denied => "denied",
            ClaimStatus::Resubmitted => "resubmitted",
            ClaimStatus::WrittenOff => "written_off",
        }
    }

    /// The status after `adjudication`.
    pub fn after(adjudication: &Adjudication) -> ClaimStatus {
        if adjudication.is_denial() {
            ClaimStatus::Denied
        } else {
            ClaimStatus::Paid
        }
    }
}

impl fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was sent: the claim's identity and its current submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The session billed.
    pub session: SessionId,
    /// The payer billed.
    pub payer: PayerId,
    /// The date of service.
    pub date_of_service: NaiveDate,
    /// The day the current lines went out.
    pub submitted_on: NaiveDate,
    /// The current lines.
    pub lines: Vec<ClaimLine>,
}

/// The state of one claim, rebuilt by folding its events in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claim {
    status: ClaimStatus,
    submission: Option<Submission>,
    adjudication: Option<Adjudication>,
    resubmissions: u32,
    written_off_cents: i64,
    write_off_reason: Option<String>,
    resubmission_reasons: Vec<String>,
}

impl Claim {
    /// Rebuilds a claim from its events, oldest first.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a ClaimEvent>) -> Claim {
        let mut claim = Claim::default();
        for event in events {
            claim.apply(event);
        }
        claim
    }

    /// The status.
    pub fn status(&self) -> ClaimStatus {
        self.status
    }

    /// What was sent, once submitted.
    pub fn submission(&self) -> Option<&Submission> {
        self.submission.as_ref()
    }

    /// The latest remittance for the current submission, if any.
    pub fn adjudication(&self) -> Option<&Adjudication> {
        self.adjudication.as_ref()
    }

    /// How many times the claim was resubmitted.
    pub fn resubmissions(&self) -> u32 {
        self.resubmissions
    }

    /// Why it was resubmitted, oldest first.
    pub fn resubmission_reasons(&self) -> &[String] {
        &self.resubmission_reasons
    }

    /// The amount written off, in cents.
    pub fn written_off_cents(&self) -> i64 {
        self.written_off_cents
    }

    /// Why it was written off.
    pub fn write_off_reason(&self) -> Option<&str> {
        self.write_off_reason.as_deref()
    }

    /// The current submission's total charge.
    pub fn billed_cents(&self) -> i64 {
        self.submission.as_ref().map_or(0, |submission| {
            submission.lines.iter().map(|line| line.charge_cents).sum()
        })
    }

    /// What neither the payer paid nor the patient owes: what may still be written off.
    pub fn unpaid_balance_cents(&self) -> i64 {
        let settled = self.adjudication.as_ref().map_or(0, |adjudication| {
            adjudication.paid_cents() + adjudication.patient_responsibility_cents()
        });
        (self.billed_cents() - settled - self.written_off_cents).max(0)
    }

    /// Folds one event into the state. Events are facts: applying never fails. An event that
    /// needs a submission (which decisions never produce without one, but another writer could)
    /// is ignored, as the projector parks it: the claim is whatever its submissions made it.
    pub fn apply(&mut self, event: &ClaimEvent) {
        if self.submission.is_none() && !matches!(event, ClaimEvent::Submitted { .. }) {
            return;
        }
        match event {
            ClaimEvent::Submitted {
                session,
                payer,
                date_of_service,
                submitted_on,
                lines,
            } => {
                self.status = ClaimStatus::Submitted;
                self.submission = Some(Submission {
                    session: *session,
                    payer: *payer,
                    date_of_service: *date_of_service,
                    submitted_on: *submitted_on,
                    lines: lines.clone(),
                });
                self.adjudication = None;
            }
            ClaimEvent::Adjudicated(adjudication) => {
                self.status = ClaimStatus::after(adjudication);
                self.adjudication = Some(adjudication.clone());
            }
            ClaimEvent::Resubmitted {
                reason,
                resubmitted_on,
                lines,
            } => {
                self.status = ClaimStatus::Resubmitted;
                self.resubmissions += 1;
                self.resubmission_reasons.push(reason.clone());
                // The previous remittance answered the previous lines; it no longer applies.
                self.adjudication = None;
                if let Some(submission) = &mut self.submission {
                    submission.submitted_on = *resubmitted_on;
                    submission.lines = lines.clone();
                }
            }
            ClaimEvent::WrittenOff {
                reason,
                amount_cents,
            } => {
                self.status = ClaimStatus::WrittenOff;
                self.written_off_cents += amount_cents;
                self.write_off_reason = Some(reason.clone());
            }
        }
    }

    /// Decides a command against this state: the events to record, or why it is refused.
    pub fn decide(
        &self,
        command: &ClaimCommand,
        context: &DecisionContext,
    ) -> Result<Vec<ClaimEvent>, ClaimError> {
        let today = context.today();
        match command {
            ClaimCommand::Submit {
                session,
                payer,
                date_of_service,
                lines,
            } => {
                self.require_status(command, &[ClaimStatus::Draft])?;
                if *date_of_service > today {
                    return Err(ClaimError::invalid(
                        "date_of_service",
                        format!("{date_of_service} is in the future (today is {today})"),
                    ));
                }
                Ok(vec![ClaimEvent::Submitted {
                    session: *session,
                    payer: *payer,
                    date_of_service: *date_of_service,
                    submitted_on: today,
                    lines: validate_lines(lines)?,
                }])
            }
            ClaimCommand::Adjudicate(remittance) => {
                self.require_status(
                    command,
                    &[
                        ClaimStatus::Submitted,
                        ClaimStatus::Resubmitted,
                        ClaimStatus::Paid,
                        ClaimStatus::Denied,
                    ],
                )?;
                let submission = self.submitted(command)?;
                let window = RemittanceWindow {
                    submitted_on: submission.submitted_on,
                    today,
                };
                let adjudication = validate_remittance(remittance, &submission.lines, window)?;
                Ok(vec![ClaimEvent::Adjudicated(adjudication)])
            }
            ClaimCommand::Resubmit { reason, lines } => {
                self.require_status(command, &[ClaimStatus::Denied])?;
                let reason = required_text("reason", reason)?;
                let lines = validate_lines(lines)?;
                self.refuse_identical_lines(&lines)?;
                Ok(vec![ClaimEvent::Resubmitted {
                    reason,
                    resubmitted_on: today,
                    lines,
                }])
            }
            ClaimCommand::WriteOff {
                reason,
                amount_cents,
            } => {
                self.require_status(
                    command,
                    &[
                        ClaimStatus::Submitted,
                        ClaimStatus::Resubmitted,
                        ClaimStatus::Paid,
                        ClaimStatus::Denied,
                    ],
                )?;
                let reason = required_text("reason", reason)?;
                let balance = self.unpaid_balance_cents();
                if balance == 0 {
                    return Err(ClaimError::invalid(
                        "amount_cents",
                        "the claim has no unpaid balance to write off",
                    ));
                }
                if !(1..=balance).contains(amount_cents) {
                    return Err(ClaimError::invalid(
                        "amount_cents",
                        format!(
                            "must be between 1 and the unpaid balance of {balance}, got {amount_cents}"
                        ),
                    ));
                }
                Ok(vec![ClaimEvent::WrittenOff {
                    reason,
                    amount_cents: *amount_cents,
                }])
            }
        }
    }

    fn submitted(&self, command: &ClaimCommand) -> Result<&Submission, ClaimError> {
        self.submission.as_ref().ok_or(ClaimError::WrongStatus {
            command: command.name(),
            status: self.status,
        })
    }

    /// A resubmission exists to change something; sending the denied lines again unchanged is a
    /// duplicate claim (CARC 18), which payers deny.
    fn refuse_identical_lines(&self, lines: &[ClaimLine]) -> Result<(), ClaimError> {
        if self
            .submission
            .as_ref()
            .is_some_and(|submission| submission.lines == lines)
        {
            return Err(ClaimError::invalid(
                "lines",
                "the lines are those of the denied submission; a resubmission changes something (e.g. the other code)",
            ));
        }
        Ok(())
    }

    fn require_status(
        &self,
        command: &ClaimCommand,
        allowed: &[ClaimStatus],
    ) -> Result<(), ClaimError> {
        if allowed.contains(&self.status) {
            return Ok(());
        }
        Err(ClaimError::WrongStatus {
            command: command.name(),
            status: self.status,
        })
    }
}

/// Lines as inputs, e.g. the derived claim's lines read back as text (for tests and callers that
/// hold validated lines).
pub fn line_inputs(lines: &[ClaimLine]) -> Vec<LineInput> {
    lines
        .iter()
        .map(|line| LineInput {
            code: line.code.as_str().to_owned(),
            modifiers: line
                .modifiers
                .iter()
                .map(|modifier| modifier.as_str().to_owned())
                .collect(),
            units: line.units,
            charge_cents: line.charge_cents,
        })
        .collect()
}
