//! The derived claims: `claims`, their `claim_lines`, and the `claim_ids` their lifecycle commits
//! are addressed by (COPYd when new, upserted when they replace a stored claim).

use claimledger_derive::rows::{ClaimRow, LineRow};
use claimledger_events::{ClaimId, PayerId, SessionId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::binary_copy::BinaryCopy;
use super::tables::{CLAIM_IDS, CLAIM_LINES, CLAIMS, OnConflict, Write};
use crate::error::ProjectorError;

/// Appends a claim to the claims COPY stream, its lines to the lines stream and its log id to
/// the ids stream.
pub(super) fn encode_claim(
    claim: &ClaimRow,
    claims: &mut BinaryCopy,
    lines: &mut BinaryCopy,
    ids: &mut BinaryCopy,
) {
    ids.row();
    ids.uuid(claim.chain);
    ids.uuid(claim_id(claim));
    ids.uuid(claim.session);
    ids.uuid(claim.payer);
    claims.row();
    claims.uuid(claim.chain);
    claims.uuid(claim.session);
    claims.uuid(claim.payer);
    claims.uuid(claim.clinic);
    claims.uuid(claim.therapist);
    claims.uuid(claim.patient);
    claims.optional_date(claim.date_of_service);
    claims.optional_text(claim.payer_key.as_deref());
    claims.optional_int4(claim.rules_version);
    claims.optional_bytea(claim.rules_sha256.as_deref());
    claims.optional_text(claim.place_of_service.as_deref());
    claims.optional_text(claim.billing_npi.as_deref());
    claims.optional_text(claim.tax_id.as_deref());
    claims.joined_text_array(&claim.diagnoses);
    claims.int8(claim.total_charge_cents);
    claims.jsonb(&claim.findings_json);
    claims.optional_text(claim.derivation_error.as_deref());
    claims.int8(claim.last_sequence);
    for (index, line) in claim.lines.iter().enumerate() {
        lines.row();
        lines.uuid(claim.chain);
        lines.uuid(claim.session);
        lines.uuid(claim.payer);
        lines.int2(i16::try_from(index + 1).unwrap_or(i16::MAX));
        lines.text(&line.code);
        lines.joined_text_array(&line.modifiers);
        lines.text(&line.diagnosis_pointers);
        lines.int4(line.units);
        lines.int8(line.charge_cents);
        lines.text(&line.rendering_npi);
    }
}

/// The claim's id on the log: the claims service names a claim by its session and payer.
fn claim_id(claim: &ClaimRow) -> Uuid {
    ClaimId::for_session_and_payer(SessionId::from(claim.session), PayerId::from(claim.payer))
        .as_uuid()
}

/// Records the log ids of claims that may already have them (re-derived claims, and every claim
/// of a batch applied with upserts).
pub(super) async fn upsert_claim_ids(
    connection: &mut PgConnection,
    schema: &str,
    claims: &[&ClaimRow],
) -> Result<(), ProjectorError> {
    if claims.is_empty() {
        return Ok(());
    }
    let statement = CLAIM_IDS.upsert(schema, OnConflict::Keep);
    Write::new(&statement, &CLAIM_IDS)
        .column(claims, |claim| claim.chain)
        .column(claims, |claim| claim_id(claim))
        .column(claims, |claim| claim.session)
        .column(claims, |claim| claim.payer)
        .run(connection, "writing claim ids")
        .await
}

/// Upserts claims that may be stored, then their lines (whose stored lines were deleted first).
pub(super) async fn upsert_claims(
    connection: &mut PgConnection,
    schema: &str,
    claims: &[&ClaimRow],
) -> Result<(), ProjectorError> {
    if claims.is_empty() {
        return Ok(());
    }
    let statement = CLAIMS.upsert(schema, OnConflict::Replace);
    Write::new(&statement, &CLAIMS)
        .column(claims, |claim| claim.chain)
        .column(claims, |claim| claim.session)
        .column(claims, |claim| claim.payer)
        .column(claims, |claim| claim.clinic)
        .column(claims, |claim| claim.therapist)
        .column(claims, |claim| claim.patient)
        .column(claims, |claim| claim.date_of_service)
        .column(claims, |claim| claim.payer_key.as_deref())
        .column(claims, |claim| claim.rules_version)
        .column(claims, |claim| claim.rules_sha256.as_deref())
        .column(claims, |claim| claim.place_of_service.as_deref())
        .column(claims, |claim| claim.billing_npi.as_deref())
        .column(claims, |claim| claim.tax_id.as_deref())
        .column(claims, |claim| claim.diagnoses.as_str())
        .column(claims, |claim| claim.total_charge_cents)
        .column(claims, |claim| claim.findings_json.as_str())
        .column(claims, |claim| claim.derivation_error.as_deref())
        .column(claims, |claim| claim.last_sequence)
        .run(&mut *connection, "writing claims")
        .await?;

    let lines: Vec<(&ClaimRow, i16, &LineRow)> =
        claims
            .iter()
            .flat_map(|claim| {
                claim.lines.iter().enumerate().map(|(index, line)| {
                    (*claim, i16::try_from(index + 1).unwrap_or(i16::MAX), line)
                })
            })
            .collect();
    if lines.is_empty() {
        return Ok(());
    }
    let statement = CLAIM_LINES.upsert(schema, OnConflict::Insert);
    Write::new(&statement, &CLAIM_LINES)
        .column(&lines, |(claim, _, _)| claim.chain)
        .column(&lines, |(claim, _, _)| claim.session)
        .column(&lines, |(claim, _, _)| claim.payer)
        .column(&lines, |(_, number, _)| *number)
        .column(&lines, |(_, _, line)| line.code.as_str())
        .column(&lines, |(_, _, line)| line.modifiers.as_str())
        .column(&lines, |(_, _, line)| line.diagnosis_pointers.as_str())
        .column(&lines, |(_, _, line)| line.units)
        .column(&lines, |(_, _, line)| line.charge_cents)
        .column(&lines, |(_, _, line)| line.rendering_npi.as_str())
        .run(connection, "writing claim lines")
        .await
}
