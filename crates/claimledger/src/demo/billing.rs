//! The demo's billing office and payers: every claim the projector derived is submitted through the
//! claims API; a simulated payer (`claimledger_claims::simulator`, driven by the payer's published
//! rules) answers each with a remittance, which billing records through the API. A claim denied
//! outright because the payer does not accept massage (97124) or manual therapy (97140) is
//! resubmitted with the other code, as the seeds recommend, and adjudicated again; whatever stays
//! denied is written off.

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use claimledger_billing::{CptCode, Modifier};
use claimledger_claims::claim::Submission;
use claimledger_claims::command::RemittanceInput;
use claimledger_claims::event::ClaimLine;
use claimledger_claims::simulator::{PayerBehaviour, SimulatedClaim, simulate_remittance};
use claimledger_events::{ClaimId, PayerId, SessionId};
use claimledger_payer_rules::rulebook::RuleBook;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::api::Api;
use super::in_parallel;

/// The two codes a massage clinic swaps after a denial (domain.md: payers that accept only one).
const MASSAGE: &str = "97124";
const MANUAL_THERAPY: &str = "97140";

/// Counts of what the billing office did.
#[derive(Debug, Default)]
pub(super) struct Billed {
    pub(super) submitted: u64,
    pub(super) paid: u64,
    pub(super) denied: u64,
    pub(super) resubmitted: u64,
    pub(super) paid_after_resubmission: u64,
    pub(super) written_off: u64,
    pub(super) requests: u64,
}

impl Billed {
    fn add(&mut self, other: &Billed) {
        self.submitted += other.submitted;
        self.paid += other.paid;
        self.denied += other.denied;
        self.resubmitted += other.resubmitted;
        self.paid_after_resubmission += other.paid_after_resubmission;
        self.written_off += other.written_off;
        self.requests += other.requests;
    }
}

/// What every claim's settlement shares.
struct Office {
    billing: Api,
    rules: Arc<RuleBook>,
    behaviour: PayerBehaviour,
    progress: ProgressBar,
}

/// Claims the demo reads from the read model at a time, so that memory stays bounded whatever the
/// chain's size.
pub(super) const DRAFTS_PER_PAGE: i64 = 10_000;

/// The draft claims billing settles: derived without an error, for a payer with rules.
const BILLABLE_DRAFTS: &str = "chain_id = $1 AND status = 'draft' AND derivation_error IS NULL \
     AND payer_key IS NOT NULL";

/// Submits and settles every draft claim of `chain` the projector derived without an error, up to
/// `concurrency` claims at once, reading them `page_size` at a time. Claims are independent of each other, and each claim's remittance
/// depends only on the seed and the claim, so the outcome does not depend on the order.
pub(super) async fn bill_chain(
    billing: Api,
    pool: &PgPool,
    chain: Uuid,
    rules: Arc<RuleBook>,
    seed: u64,
    concurrency: u32,
    page_size: i64,
) -> anyhow::Result<Billed> {
    let total = billable_drafts(pool, chain).await?;

    let office = Arc::new(Office {
        billing,
        rules,
        behaviour: PayerBehaviour {
            seed,
            deductible_line_percent: 15,
            deductible_percent_of_allowed: 40,
        },
        progress: ProgressBar::new(u64::try_from(total)?).with_style(ProgressStyle::with_template(
            "billing claims   {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
        )?),
    });
    let mut billed = Billed::default();
    // Pages in key order: the read model is not updated while billing runs (the projector catches
    // up afterwards), so a page is found by the last key of the one before, not by status.
    let mut after = (Uuid::nil(), Uuid::nil());
    loop {
        let drafts: Vec<(Uuid, Uuid, String)> = sqlx::query_as(&format!(
            "SELECT session_id, payer_id, payer_key FROM read_models.claims \
             WHERE {BILLABLE_DRAFTS} AND (session_id, payer_id) > ($2, $3) \
             ORDER BY session_id, payer_id LIMIT $4"
        ))
        .bind(chain)
        .bind(after.0)
        .bind(after.1)
        .bind(page_size)
        .fetch_all(pool)
        .await
        .context("reading the derived draft claims")?;
        let Some(last) = drafts.last() else { break };
        after = (last.0, last.1);
        let settled = in_parallel(usize::try_from(concurrency)?, drafts, {
            let office = Arc::clone(&office);
            move |(session, payer, payer_key)| {
                let office = Arc::clone(&office);
                async move {
                    let claim = ClaimId::for_session_and_payer(
                        SessionId::from(session),
                        PayerId::from(payer),
                    );
                    let settle = Settle {
                        office: &office,
                        payer_key: &payer_key,
                        path: format!("/v1/claims/{}", claim.as_uuid()),
                    };
                    let mut billed = Billed::default();
                    settle.run(&mut billed).await?;
                    office.progress.inc(1);
                    Ok(billed)
                }
            }
        })
        .await?;
        for claim in &settled {
            billed.add(claim);
        }
    }
    office.progress.finish_and_clear();
    Ok(billed)
}

/// How many of `chain`'s draft claims billing would settle (as the read model has them now).
pub(super) async fn billable_drafts(pool: &PgPool, chain: Uuid) -> anyhow::Result<i64> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM read_models.claims WHERE {BILLABLE_DRAFTS}"
    ))
    .bind(chain)
    .fetch_one(pool)
    .await
    .context("counting the derived draft claims")
}

/// One claim's way through billing.
struct Settle<'a> {
    office: &'a Office,
    payer_key: &'a str,
    path: String,
}

impl Settle<'_> {
    async fn run(&self, billed: &mut Billed) -> anyhow::Result<()> {
        let view = self
            .office
            .billing
            .post(&format!("{}/submit", self.path), &json!({}))
            .await?;
        billed.submitted += 1;
        billed.requests += 1;
        let (view, remittance) = self.adjudicate(&view, billed).await?;
        if view["status"] == "paid" {
            billed.paid += 1;
            return self
                .write_off_denied_lines(&view, &remittance, billed)
                .await;
        }
        billed.denied += 1;

        let Some(lines) = swapped_lines(&view, &remittance) else {
            return self
                .write_off_denied_lines(&view, &remittance, billed)
                .await;
        };
        let view = self
            .office
            .billing
            .post_if_match(
                &format!("{}/resubmit", self.path),
                &json!({"reason": "denied as not covered; billing the other code", "lines": lines}),
                version(&view)?,
            )
            .await?;
        billed.resubmitted += 1;
        billed.requests += 1;
        let (view, remittance) = self.adjudicate(&view, billed).await?;
        if view["status"] == "paid" {
            billed.paid_after_resubmission += 1;
        }
        self.write_off_denied_lines(&view, &remittance, billed)
            .await
    }

    /// Asks the simulated payer for its remittance and records it.
    async fn adjudicate(
        &self,
        view: &Value,
        billed: &mut Billed,
    ) -> anyhow::Result<(Value, RemittanceInput)> {
        let submission = submission(view)?;
        let policy = self
            .office
            .rules
            .policy_in_force(self.payer_key, submission.date_of_service)
            .with_context(|| {
                format!(
                    "no {} rules in force on {}",
                    self.payer_key, submission.date_of_service
                )
            })?;
        let remittance = simulate_remittance(
            policy,
            self.office.rules.reference(),
            SimulatedClaim {
                submission: &submission,
                // The day the claim was submitted, as the API dated it in the clinic's time zone:
                // the demo's own UTC date may already be tomorrow there, and a remittance dated in
                // the clinic's future is refused.
                adjudicated_on: submission.submitted_on,
            },
            self.office.behaviour,
        );
        let view = self
            .office
            .billing
            .post_if_match(
                &format!("{}/adjudications", self.path),
                &remittance_body(&remittance),
                version(view)?,
            )
            .await?;
        billed.requests += 1;
        Ok((view, remittance))
    }

    /// Writes off the charges of lines the payer did not pay at all.
    async fn write_off_denied_lines(
        &self,
        view: &Value,
        remittance: &RemittanceInput,
        billed: &mut Billed,
    ) -> anyhow::Result<()> {
        let charges = charges_by_line(view)?;
        let denied: i64 = remittance
            .lines
            .iter()
            .filter(|line| line.paid_cents == 0 && line.patient_responsibility_cents == 0)
            .filter_map(|line| charges.get(usize::from(line.line_number).wrapping_sub(1)))
            .sum();
        if denied == 0 {
            return Ok(());
        }
        self.office.billing
            .post_if_match(
                &format!("{}/write-off", self.path),
                &json!({"reason": "denied by the payer; not billable to the patient", "amount_cents": denied}),
                version(view)?,
            )
            .await?;
        billed.written_off += 1;
        billed.requests += 1;
        Ok(())
    }
}

/// The claim's version, sent back as `If-Match`.
fn version(view: &Value) -> anyhow::Result<u64> {
    view["version"]
        .as_u64()
        .with_context(|| format!("the claim has no version: {view}"))
}

/// The line charges in line order.
fn charges_by_line(view: &Value) -> anyhow::Result<Vec<i64>> {
    lines(view)?
        .iter()
        .map(|line| {
            line["charge_cents"]
                .as_i64()
                .with_context(|| format!("a line without a charge: {line}"))
        })
        .collect()
}

fn lines(view: &Value) -> anyhow::Result<&Vec<Value>> {
    view["lines"]
        .as_array()
        .with_context(|| format!("the claim has no lines: {view}"))
}

/// The submission as the payer receives it, from the claims API's view of the claim.
fn submission(view: &Value) -> anyhow::Result<Submission> {
    let text = |field: &str| {
        view[field]
            .as_str()
            .with_context(|| format!("the claim has no {field}: {view}"))
    };
    let mut claim_lines = Vec::new();
    for line in lines(view)? {
        let code = line["code"].as_str().context("a line without a code")?;
        let modifiers = line["modifiers"]
            .as_array()
            .context("a line without modifiers")?
            .iter()
            .map(|modifier| {
                Modifier::from_str(modifier.as_str().unwrap_or_default())
                    .map_err(|error| anyhow::anyhow!("modifier {modifier}: {error}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        claim_lines.push(ClaimLine {
            line_number: u16::try_from(line["line_number"].as_u64().unwrap_or_default())?,
            code: CptCode::parse("code", code)?,
            modifiers,
            units: u16::try_from(line["units"].as_u64().unwrap_or_default())?,
            charge_cents: line["charge_cents"].as_i64().unwrap_or_default(),
        });
    }
    Ok(Submission {
        session: SessionId::from(Uuid::parse_str(text("session_id")?)?),
        payer: PayerId::from(Uuid::parse_str(text("payer_id")?)?),
        date_of_service: text("date_of_service")?.parse()?,
        submitted_on: text("submitted_on")?.parse()?,
        lines: claim_lines,
    })
}

/// The claims API's adjudication body for a remittance.
fn remittance_body(remittance: &RemittanceInput) -> Value {
    json!({
        "payer_claim_number": remittance.payer_claim_number,
        "adjudicated_on": remittance.adjudicated_on,
        "lines": remittance.lines.iter().map(|line| json!({
            "line_number": line.line_number,
            "allowed_cents": line.allowed_cents,
            "paid_cents": line.paid_cents,
            "patient_responsibility_cents": line.patient_responsibility_cents,
            "paid_units": line.paid_units,
            "adjustments": line.adjustments.iter().map(|adjustment| json!({
                "group": adjustment.group,
                "reason_code": adjustment.reason_code,
                "amount_cents": adjustment.amount_cents,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The lines to resubmit when the payer refused massage or manual therapy as not covered (CO-50):
/// the same lines with those codes swapped, or `None` when no line was refused for that reason.
fn swapped_lines(view: &Value, remittance: &RemittanceInput) -> Option<Vec<Value>> {
    let not_covered: Vec<u16> = remittance
        .lines
        .iter()
        .filter(|line| {
            line.paid_cents == 0
                && line
                    .adjustments
                    .iter()
                    .any(|adjustment| adjustment.group == "CO" && adjustment.reason_code == "50")
        })
        .map(|line| line.line_number)
        .collect();
    let mut swapped_any = false;
    let lines = lines(view)
        .ok()?
        .iter()
        .map(|line| {
            let number = u16::try_from(line["line_number"].as_u64().unwrap_or_default()).ok();
            let code = line["code"].as_str().unwrap_or_default();
            let other = match code {
                MASSAGE => MANUAL_THERAPY,
                MANUAL_THERAPY => MASSAGE,
                _ => code,
            };
            let code =
                if number.is_some_and(|number| not_covered.contains(&number)) && other != code {
                    swapped_any = true;
                    other
                } else {
                    code
                };
            json!({"code": code, "modifiers": line["modifiers"], "units": line["units"],
                   "charge_cents": line["charge_cents"]})
        })
        .collect();
    swapped_any.then_some(lines)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use claimledger_claims::command::{AdjustmentInput, LineAdjudicationInput};

    use super::*;

    fn denied(line_number: u16, reason: &str) -> LineAdjudicationInput {
        LineAdjudicationInput {
            line_number,
            allowed_cents: 0,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            paid_units: 0,
            adjustments: vec![AdjustmentInput {
                group: "CO".to_owned(),
                reason_code: reason.to_owned(),
                amount_cents: 9000,
            }],
        }
    }

    fn view() -> Value {
        json!({"lines": [
            {"line_number": 1, "code": "97124", "modifiers": ["GP"], "units": 2, "charge_cents": 9000},
            {"line_number": 2, "code": "97010", "modifiers": [], "units": 1, "charge_cents": 1500},
        ]})
    }

    #[test]
    fn a_massage_line_denied_as_not_covered_is_resubmitted_as_manual_therapy() {
        let remittance = RemittanceInput {
            payer_claim_number: "X".to_owned(),
            adjudicated_on: NaiveDate::from_ymd_opt(2026, 1, 5).expect("a date"),
            lines: vec![denied(1, "50"), denied(2, "97")],
        };
        let lines = swapped_lines(&view(), &remittance).expect("a resubmission");
        assert_eq!(lines[0]["code"], "97140");
        assert_eq!(lines[0]["modifiers"], json!(["GP"]));
        assert_eq!(lines[1]["code"], "97010", "other codes are not swapped");
    }

    #[test]
    fn a_bundling_denial_is_not_fixed_by_swapping_codes() {
        let remittance = RemittanceInput {
            payer_claim_number: "X".to_owned(),
            adjudicated_on: NaiveDate::from_ymd_opt(2026, 1, 5).expect("a date"),
            lines: vec![denied(1, "97"), denied(2, "97")],
        };
        assert!(swapped_lines(&view(), &remittance).is_none());
    }
}
