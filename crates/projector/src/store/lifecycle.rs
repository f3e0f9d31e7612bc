//! The claim lifecycle's SQL: the stored lifecycles a batch's claim commits continue, read in two
//! queries, and the changed claims, their line outcomes and the rollup deltas written back.

use std::collections::HashMap;

use chrono::NaiveDate;
use claimledger_claims::claim::ClaimStatus;
use claimledger_derive::keys::ClaimKey;
use claimledger_derive::lifecycle::{
    ClaimCommit, Lifecycle, LineResult, OutcomeLine, fold_lifecycles,
};
use claimledger_derive::rows::{BatchChanges, ParkedRow, to_i64};
use claimledger_events::encode;
use sqlx::PgConnection;
use uuid::Uuid;

use super::parked::write_parked;
use super::rollups::write_rollups;
use super::tables::{CLAIM_LINE_OUTCOMES, OnConflict, Write};
use crate::error::ProjectorError;

/// Folds the batch's claim commits onto the stored state of their claims (the claims' log ids were
/// recorded with the claims, in [`super::write_changes`]) and writes claims, outcomes and rollup
/// deltas. Commits that do not fit (a claim never derived, a remittance before any submission) are
/// parked.
pub(crate) async fn write_claim_lifecycles(
    connection: &mut PgConnection,
    schema: &str,
    changes: &BatchChanges,
) -> Result<(), ProjectorError> {
    if changes.claim_commits.is_empty() {
        return Ok(());
    }
    let keys: Vec<ClaimKey> = changes.claim_commits.iter().map(ClaimCommit::key).collect();
    let stored = load(connection, schema, &keys).await?;
    let folded = fold_lifecycles(&changes.claim_commits, stored);
    write_claims(connection, schema, &folded.claims).await?;
    write_outcomes(connection, schema, &folded.claims).await?;
    write_rollups(connection, schema, &folded.deltas).await?;
    let parked: Vec<ParkedRow> = folded
        .parked
        .iter()
        .map(|(claim, reason)| {
            tracing::warn!(
                seq = claim.sequence,
                subject = %claim.subject,
                error.message = %reason,
                "claim commit parked"
            );
            ParkedRow {
                sequence: to_i64(claim.sequence),
                subject: claim.subject.clone(),
                chain: Some(claim.commit.chain.as_uuid()),
                error: reason.clone(),
                payload: encode(&claim.commit).ok(),
            }
        })
        .collect();
    write_parked(connection, &parked).await
}

/// A stored claim's lifecycle columns, with the claim id it is known by.
#[derive(Debug, sqlx::FromRow)]
struct StoredClaim {
    chain_id: Uuid,
    claim_id: Uuid,
    session_id: Uuid,
    payer_id: Uuid,
    clinic_id: Uuid,
    date_of_service: Option<NaiveDate>,
    status: String,
    submitted_on: Option<NaiveDate>,
    adjudicated_on: Option<NaiveDate>,
    payer_claim_number: Option<String>,
    written_off_cents: i64,
    resubmissions: i32,
}

/// A stored submitted line and its latest adjudication (all `None` while unadjudicated).
#[derive(Debug, sqlx::FromRow)]
struct StoredLine {
    chain_id: Uuid,
    session_id: Uuid,
    payer_id: Uuid,
    line_number: i32,
    code: String,
    modifiers: Vec<String>,
    units: i32,
    charge_cents: i64,
    allowed_cents: Option<i64>,
    paid_cents: Option<i64>,
    patient_responsibility_cents: Option<i64>,
    paid_units: Option<i32>,
    adjustments: String,
}

/// Reads the stored lifecycle of the given claims (those whose claim was derived).
async fn load(
    connection: &mut PgConnection,
    schema: &str,
    keys: &[ClaimKey],
) -> Result<HashMap<ClaimKey, Lifecycle>, ProjectorError> {
    let chains: Vec<Uuid> = keys.iter().map(|key| key.chain).collect();
    let ids: Vec<Uuid> = keys.iter().map(|key| key.claim).collect();
    let rows: Vec<StoredClaim> = sqlx::query_as(&format!(
        "SELECT DISTINCT i.chain_id, i.claim_id, c.session_id, c.payer_id, c.clinic_id, \
                c.date_of_service, c.status, c.submitted_on, c.adjudicated_on, \
                c.payer_claim_number, c.written_off_cents, c.resubmissions \
         FROM UNNEST($1::uuid[], $2::uuid[]) AS k(chain_id, claim_id) \
         JOIN {schema}.claim_ids i ON i.chain_id = k.chain_id AND i.claim_id = k.claim_id \
         JOIN {schema}.claims c ON c.chain_id = i.chain_id AND c.session_id = i.session_id \
           AND c.payer_id = i.payer_id"
    ))
    .bind(&chains)
    .bind(&ids)
    .persistent(false)
    .fetch_all(&mut *connection)
    .await
    .map_err(ProjectorError::db("reading stored claim lifecycles"))?;
    let mut claims: HashMap<ClaimKey, Lifecycle> = HashMap::with_capacity(rows.len());
    let mut by_claim: HashMap<(Uuid, Uuid, Uuid), ClaimKey> = HashMap::with_capacity(rows.len());
    for row in rows {
        let (chain, session, payer) = (row.chain_id, row.session_id, row.payer_id);
        let key = ClaimKey {
            chain,
            claim: row.claim_id,
        };
        by_claim.insert((chain, session, payer), key);
        claims.insert(
            key,
            Lifecycle {
                chain,
                session,
                payer,
                clinic: row.clinic_id,
                date_of_service: row.date_of_service,
                status: parse_status(&row.status),
                submitted_on: row.submitted_on,
                adjudicated_on: row.adjudicated_on,
                payer_claim_number: row.payer_claim_number,
                written_off_cents: row.written_off_cents,
                resubmissions: row.resubmissions,
                lines: Vec::new(),
            },
        );
    }
    let submitted: Vec<&Lifecycle> = claims
        .values()
        .filter(|claim| claim.submitted_on.is_some())
        .collect();
    if submitted.is_empty() {
        return Ok(claims);
    }
    let chains: Vec<Uuid> = submitted.iter().map(|claim| claim.chain).collect();
    let sessions: Vec<Uuid> = submitted.iter().map(|claim| claim.session).collect();
    let payers: Vec<Uuid> = submitted.iter().map(|claim| claim.payer).collect();
    let lines: Vec<StoredLine> = sqlx::query_as(&format!(
        "SELECT o.chain_id, o.session_id, o.payer_id, o.line_number, o.code, o.modifiers, \
                o.units, o.charge_cents, o.allowed_cents, o.paid_cents, \
                o.patient_responsibility_cents, o.paid_units, o.adjustments::text AS adjustments \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS k(chain_id, session_id, payer_id) \
         JOIN {schema}.claim_line_outcomes o ON o.chain_id = k.chain_id \
           AND o.session_id = k.session_id AND o.payer_id = k.payer_id \
         ORDER BY o.chain_id, o.session_id, o.payer_id, o.line_number"
    ))
    .bind(chains)
    .bind(sessions)
    .bind(payers)
    .persistent(false)
    .fetch_all(&mut *connection)
    .await
    .map_err(ProjectorError::db("reading stored claim outcomes"))?;
    for line in lines {
        let Some(claim) = by_claim
            .get(&(line.chain_id, line.session_id, line.payer_id))
            .and_then(|key| claims.get_mut(key))
        else {
            continue;
        };
        let result = match (
            line.allowed_cents,
            line.paid_cents,
            line.patient_responsibility_cents,
            line.paid_units,
        ) {
            (
                Some(allowed_cents),
                Some(paid_cents),
                Some(patient_responsibility_cents),
                Some(paid_units),
            ) => {
                Some(LineResult {
                    allowed_cents,
                    paid_cents,
                    patient_responsibility_cents,
                    paid_units,
                    // Written by this module from the same type; a row that does not parse was
                    // edited by hand, and its adjustments are then missing from the rollups.
                    adjustments: serde_json::from_str(&line.adjustments).unwrap_or_default(),
                })
            }
            _ => None,
        };
        claim.lines.push(OutcomeLine {
            line_number: line.line_number,
            code: line.code,
            modifiers: line.modifiers,
            units: line.units,
            charge_cents: line.charge_cents,
            result,
        });
    }
    Ok(claims)
}

fn parse_status(text: &str) -> ClaimStatus {
    [
        ClaimStatus::Draft,
        ClaimStatus::Submitted,
        ClaimStatus::Paid,
        ClaimStatus::Denied,
        ClaimStatus::Resubmitted,
        ClaimStatus::WrittenOff,
    ]
    .into_iter()
    .find(|status| status.as_str() == text)
    .unwrap_or_default()
}

async fn write_claims(
    connection: &mut PgConnection,
    schema: &str,
    claims: &[Lifecycle],
) -> Result<(), ProjectorError> {
    if claims.is_empty() {
        return Ok(());
    }
    let uuids = |f: fn(&Lifecycle) -> Uuid| claims.iter().map(f).collect::<Vec<_>>();
    let days = |f: fn(&Lifecycle) -> Option<NaiveDate>| claims.iter().map(f).collect::<Vec<_>>();
    let sums = |f: fn(&Lifecycle) -> i64| claims.iter().map(f).collect::<Vec<_>>();
    sqlx::query(&format!(
        "UPDATE {schema}.claims c SET status = u.status, submitted_on = u.submitted_on, \
             adjudicated_on = u.adjudicated_on, payer_claim_number = u.payer_claim_number, \
             billed_cents = u.billed_cents, allowed_cents = u.allowed_cents, \
             paid_cents = u.paid_cents, \
             patient_responsibility_cents = u.patient_responsibility_cents, \
             written_off_cents = u.written_off_cents, resubmissions = u.resubmissions \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::date[], $6::date[], \
             $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
             $13::int4[]) \
           AS u(chain_id, session_id, payer_id, status, submitted_on, adjudicated_on, \
             payer_claim_number, billed_cents, allowed_cents, paid_cents, \
             patient_responsibility_cents, written_off_cents, resubmissions) \
         WHERE c.chain_id = u.chain_id AND c.session_id = u.session_id \
           AND c.payer_id = u.payer_id"
    ))
    .bind(uuids(|claim| claim.chain))
    .bind(uuids(|claim| claim.session))
    .bind(uuids(|claim| claim.payer))
    .bind(
        claims
            .iter()
            .map(|claim| claim.status.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(days(|claim| claim.submitted_on))
    .bind(days(|claim| claim.adjudicated_on))
    .bind(
        claims
            .iter()
            .map(|claim| claim.payer_claim_number.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(sums(|claim| {
        claim.lines.iter().map(|line| line.charge_cents).sum()
    }))
    .bind(sums(|claim| claim.total(|result| result.allowed_cents)))
    .bind(sums(|claim| claim.total(|result| result.paid_cents)))
    .bind(sums(|claim| {
        claim.total(|result| result.patient_responsibility_cents)
    }))
    .bind(sums(|claim| claim.written_off_cents))
    .bind(
        claims
            .iter()
            .map(|claim| claim.resubmissions)
            .collect::<Vec<_>>(),
    )
    .persistent(false)
    .execute(&mut *connection)
    .await
    .map_err(ProjectorError::db("writing claim lifecycles"))?;
    Ok(())
}

async fn write_outcomes(
    connection: &mut PgConnection,
    schema: &str,
    claims: &[Lifecycle],
) -> Result<(), ProjectorError> {
    if claims.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "DELETE FROM {schema}.claim_line_outcomes o \
         USING UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS k(chain_id, session_id, payer_id) \
         WHERE o.chain_id = k.chain_id AND o.session_id = k.session_id \
           AND o.payer_id = k.payer_id"
    ))
    .bind(claims.iter().map(|claim| claim.chain).collect::<Vec<_>>())
    .bind(claims.iter().map(|claim| claim.session).collect::<Vec<_>>())
    .bind(claims.iter().map(|claim| claim.payer).collect::<Vec<_>>())
    .persistent(false)
    .execute(&mut *connection)
    .await
    .map_err(ProjectorError::db("replacing claim outcomes"))?;

    let count: usize = claims.iter().map(|claim| claim.lines.len()).sum();
    if count == 0 {
        return Ok(());
    }
    let mut chains = Vec::with_capacity(count);
    let mut sessions = Vec::with_capacity(count);
    let mut payers = Vec::with_capacity(count);
    let mut numbers: Vec<i32> = Vec::with_capacity(count);
    let mut codes: Vec<&str> = Vec::with_capacity(count);
    let mut modifiers: Vec<String> = Vec::with_capacity(count);
    let mut units: Vec<i32> = Vec::with_capacity(count);
    let mut charges: Vec<i64> = Vec::with_capacity(count);
    let mut allowed: Vec<Option<i64>> = Vec::with_capacity(count);
    let mut paid: Vec<Option<i64>> = Vec::with_capacity(count);
    let mut patient: Vec<Option<i64>> = Vec::with_capacity(count);
    let mut paid_units: Vec<Option<i32>> = Vec::with_capacity(count);
    let mut denied: Vec<bool> = Vec::with_capacity(count);
    let mut adjustments: Vec<String> = Vec::with_capacity(count);
    for claim in claims {
        for line in &claim.lines {
            chains.push(claim.chain);
            sessions.push(claim.session);
            payers.push(claim.payer);
            numbers.push(line.line_number);
            codes.push(line.code.as_str());
            modifiers.push(line.modifiers.join(","));
            units.push(line.units);
            charges.push(line.charge_cents);
            let result = line.result.as_ref();
            allowed.push(result.map(|result| result.allowed_cents));
            paid.push(result.map(|result| result.paid_cents));
            patient.push(result.map(|result| result.patient_responsibility_cents));
            paid_units.push(result.map(|result| result.paid_units));
            denied.push(result.is_some_and(|result| result.paid_cents == 0));
            adjustments.push(
                serde_json::to_string(
                    result.map_or(&[][..], |result| result.adjustments.as_slice()),
                )
                .unwrap_or_else(|_| "[]".to_owned()),
            );
        }
    }
    let statement = CLAIM_LINE_OUTCOMES.upsert(schema, OnConflict::Insert);
    Write::new(&statement, &CLAIM_LINE_OUTCOMES)
        .bind(chains)
        .bind(sessions)
        .bind(payers)
        .bind(numbers)
        .bind(codes)
        .bind(modifiers)
        .bind(units)
        .bind(charges)
        .bind(allowed)
        .bind(paid)
        .bind(patient)
        .bind(paid_units)
        .bind(denied)
        .bind(adjustments)
        .run(connection, "writing claim outcomes")
        .await
}
