//! Claim lifecycles on the log, decided by the claims domain exactly as the sessions API decides
//! them (`Claim::decide` on the aggregate's events, one commit per command at the aggregate's
//! version): submissions of the derived claims, remittances that pay, deny or deny one line,
//! resubmissions with another code, corrected remittances and write-offs.
//!
//! Part of the harness, shared by the projector's tests and its rollup benchmark. Also registers
//! more clinics for a workload's chain, so rollups have several clinics to sum over.

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use claimledger_claims::claim::{Claim, line_inputs};
use claimledger_claims::command::{
    AdjustmentInput, ClaimCommand, DecisionContext, LineAdjudicationInput, LineInput,
    RemittanceInput,
};
use claimledger_claims::schema::to_log_event;
use claimledger_events::reference::ClinicRegistered;
use claimledger_events::{AggregateKind, ChainId, ClaimId, ClinicId, Event};
use claimledger_log::{AggregateAddress, EventLog};
use futures::StreamExt as _;
use sqlx::PgPool;
use uuid::Uuid;

use crate::workload::Workload;

/// The workload clinics' time zone (`Workload::record_directory` registers it): "today" for the
/// decisions is today there, as the sessions API takes it from the clinic.
const CLINIC_TIME_ZONE: Tz = chrono_tz::America::Los_Angeles;

/// A clinic registration named `name`, in Portland, on the workload's time zone.
pub fn clinic_registration(name: String) -> ClinicRegistered {
    ClinicRegistered {
        name,
        npi: "1234567893".to_owned(),
        tax_id: "12-3456789".to_owned(),
        address_line: "2 Side St".to_owned(),
        city: "Portland".to_owned(),
        state: "OR".to_owned(),
        postal_code: "97202".to_owned(),
        time_zone: CLINIC_TIME_ZONE.name().to_owned(),
        place_of_service: "11".to_owned(),
    }
}

/// `workload`'s chain with another clinic, registered on the log; visits go to it through the
/// returned workload (same chain and therapists). Give its visits indices no other clinic of the
/// chain uses: a visit's session id is made from the chain and the index.
pub async fn another_clinic(log: &EventLog, workload: &Workload) -> anyhow::Result<Workload> {
    let clinic: ClinicId = Uuid::new_v4().into();
    let address = AggregateAddress {
        chain: workload.chain,
        clinic: None,
        kind: AggregateKind::Clinic,
        id: clinic.into(),
    };
    let registered = clinic_registration(format!("Clinic {}", clinic.as_uuid().simple()));
    let commit = crate::commits::commit_for(&address, vec![Event::ClinicRegistered(registered)]);
    log.append(&address, 0, &commit)
        .await
        .context("registering another clinic")?;
    Ok(Workload {
        chain: workload.chain,
        clinic,
        therapists: workload.therapists.clone(),
        days: workload.days,
    })
}

/// Appends the visits with the given indices (see `Workload::visit_commits`), `concurrency`
/// sessions at a time.
pub async fn append_visits_at(
    log: &EventLog,
    workload: &Workload,
    indices: impl IntoIterator<Item = u64>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let appended = futures::stream::iter(indices)
        .map(|index| async move {
            let session = workload.session(index);
            let mut version = 0;
            for commit in workload.visit_commits(index) {
                version = log.append(&session, version, &commit).await?.sequence;
            }
            anyhow::Ok(())
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    appended.into_iter().collect()
}

/// A derived claim and its aggregate on the log.
#[derive(Debug, Clone)]
pub struct ClaimOnLog {
    /// Where its commits go.
    pub address: AggregateAddress,
    /// The derived lines, as the projector wrote them.
    pub derived: Vec<LineInput>,
    /// Its session, payer and date of service, for the submission.
    pub session: Uuid,
    pub payer: Uuid,
    pub date_of_service: NaiveDate,
    version: u64,
    claim: Claim,
}

type ClaimRow = (Uuid, Uuid, Uuid, Uuid, NaiveDate);

/// Every claim of `chain` the projector derived (no derivation error), in session order, none of
/// them on the log yet.
pub async fn derived_claims(db: &PgPool, chain: ChainId) -> anyhow::Result<Vec<ClaimOnLog>> {
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "SELECT i.claim_id, c.session_id, c.payer_id, c.clinic_id, c.date_of_service \
         FROM read_models.claim_ids i \
         JOIN read_models.claims c USING (chain_id, session_id, payer_id) \
         WHERE i.chain_id = $1 AND c.derivation_error IS NULL \
         ORDER BY c.session_id, c.payer_id",
    )
    .bind(chain.as_uuid())
    .fetch_all(db)
    .await
    .context("reading the derived claims")?;
    let lines: Vec<(Uuid, Uuid, String, Vec<String>, i32, i64)> = sqlx::query_as(
        "SELECT session_id, payer_id, code, modifiers, units, charge_cents \
         FROM read_models.claim_lines WHERE chain_id = $1 \
         ORDER BY session_id, payer_id, line_number",
    )
    .bind(chain.as_uuid())
    .fetch_all(db)
    .await
    .context("reading the derived lines")?;
    let mut claims = Vec::with_capacity(rows.len());
    for (claim_id, session, payer, clinic, date_of_service) in rows {
        let derived: Vec<LineInput> = lines
            .iter()
            .filter(|line| line.0 == session && line.1 == payer)
            .map(|(_, _, code, modifiers, units, charge_cents)| {
                Ok(LineInput {
                    code: code.clone(),
                    modifiers: modifiers.clone(),
                    units: u16::try_from(*units)?,
                    charge_cents: *charge_cents,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!(!derived.is_empty(), "claim {claim_id} has no lines");
        claims.push(ClaimOnLog {
            address: AggregateAddress {
                chain,
                clinic: Some(ClinicId::from(clinic)),
                kind: AggregateKind::Claim,
                id: ClaimId::from(claim_id).into(),
            },
            derived,
            session,
            payer,
            date_of_service,
            version: 0,
            claim: Claim::default(),
        });
    }
    Ok(claims)
}

/// What a simulated payer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Every line paid at 80 % of the charge (CO-45 for the rest), every other line with a tenth
    /// of the allowed amount left to the patient (PR-1).
    Paid,
    /// Nothing paid (CO-50 for the whole charge of every line).
    Denied,
    /// The first line bundled (CO-97), the others paid.
    FirstLineDenied,
}

impl ClaimOnLog {
    /// Submits the derived lines.
    pub fn submit(&self) -> ClaimCommand {
        ClaimCommand::Submit {
            session: self.session.into(),
            payer: self.payer.into(),
            date_of_service: self.date_of_service,
            lines: self.derived.clone(),
        }
    }

    /// The payer's answer to the current submission, dated `today`.
    pub fn remittance(&self, answer: Answer, today: NaiveDate) -> anyhow::Result<ClaimCommand> {
        let submission = self
            .claim
            .submission()
            .context("a remittance needs a submission")?;
        let lines = submission
            .lines
            .iter()
            .map(|line| {
                let charge = line.charge_cents;
                let denied = match answer {
                    Answer::Paid => false,
                    Answer::Denied => true,
                    Answer::FirstLineDenied => line.line_number == 1,
                };
                if denied {
                    let reason = if answer == Answer::Denied { "50" } else { "97" };
                    return LineAdjudicationInput {
                        line_number: line.line_number,
                        allowed_cents: 0,
                        paid_cents: 0,
                        patient_responsibility_cents: 0,
                        paid_units: 0,
                        adjustments: vec![adjustment("CO", reason, charge)],
                    };
                }
                let allowed = charge * 4 / 5;
                let patient = if line.line_number % 2 == 0 {
                    allowed / 10
                } else {
                    0
                };
                let mut adjustments = vec![adjustment("CO", "45", charge - allowed)];
                if patient > 0 {
                    adjustments.push(adjustment("PR", "1", patient));
                }
                LineAdjudicationInput {
                    line_number: line.line_number,
                    allowed_cents: allowed,
                    paid_cents: allowed - patient,
                    patient_responsibility_cents: patient,
                    paid_units: line.units,
                    adjustments,
                }
            })
            .collect();
        Ok(ClaimCommand::Adjudicate(RemittanceInput {
            payer_claim_number: format!("PCN-{}", self.session.simple()),
            adjudicated_on: today,
            lines,
        }))
    }

    /// Resubmits the current lines with the first line's code replaced by `code`.
    pub fn resubmit_as(&self, code: &str) -> anyhow::Result<ClaimCommand> {
        let submission = self
            .claim
            .submission()
            .context("a resubmission needs a submission")?;
        let mut lines = line_inputs(&submission.lines);
        code.clone_into(&mut lines[0].code);
        Ok(ClaimCommand::Resubmit {
            reason: format!("billed as {code}"),
            lines,
        })
    }

    /// Resubmits the derived lines.
    pub fn resubmit_derived(&self) -> ClaimCommand {
        ClaimCommand::Resubmit {
            reason: "back to the derived lines".to_owned(),
            lines: self.derived.clone(),
        }
    }

    /// Writes off the whole unpaid balance.
    pub fn write_off_balance(&self) -> ClaimCommand {
        ClaimCommand::WriteOff {
            reason: "not worth pursuing".to_owned(),
            amount_cents: self.claim.unpaid_balance_cents(),
        }
    }

    /// Decides `command` on the claim at `now` and appends its events as one commit.
    pub async fn run(
        &mut self,
        log: &EventLog,
        command: &ClaimCommand,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let context = DecisionContext::at(now, CLINIC_TIME_ZONE);
        let events = self
            .claim
            .decide(command, &context)
            .map_err(|error| anyhow::anyhow!("{}: {}", error.field(), error.reason()))
            .with_context(|| format!("deciding {} on {}", command.name(), self.address.id))?;
        let commit =
            crate::commits::commit_for(&self.address, events.iter().map(to_log_event).collect());
        self.version = log
            .append(&self.address, self.version, &commit)
            .await
            .with_context(|| format!("appending {} on {}", command.name(), self.address.id))?
            .sequence;
        for event in &events {
            self.claim.apply(event);
        }
        Ok(())
    }
}

/// Today in the workload clinics at `now`.
pub fn clinic_today(now: DateTime<Utc>) -> NaiveDate {
    DecisionContext::at(now, CLINIC_TIME_ZONE).today()
}

/// Runs one command per claim (`None`: nothing for that claim), `concurrency` claims at a time.
pub async fn run_round(
    log: &EventLog,
    claims: &mut [ClaimOnLog],
    concurrency: usize,
    command: impl Fn(usize, &ClaimOnLog) -> anyhow::Result<Option<ClaimCommand>>,
) -> anyhow::Result<usize> {
    let now = Utc::now();
    let mut planned = Vec::new();
    for (index, claim) in claims.iter_mut().enumerate() {
        if let Some(command) = command(index, claim)? {
            planned.push((claim, command));
        }
    }
    let count = planned.len();
    let results = futures::stream::iter(planned)
        .map(|(claim, command)| async move { claim.run(log, &command, now).await })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect::<anyhow::Result<()>>()?;
    Ok(count)
}

fn adjustment(group: &str, reason: &str, amount_cents: i64) -> AdjustmentInput {
    AdjustmentInput {
        group: group.to_owned(),
        reason_code: reason.to_owned(),
        amount_cents,
    }
}
