//! A completed session's draft claim, derived with the billing core, the rules in force on its
//! date of service and the provider directory, and judged by the scrubber.

use claimledger_billing::{Finding, derive_claim, scrub};
use claimledger_sessions::command::Payment;
use claimledger_sessions::session::Session;
use claimledger_sessions::visit::{VisitFacts, completed_visit};
use uuid::Uuid;

use crate::directory::Directory;
use crate::rows::{ClaimRow, LineRow, join, to_i64};
use crate::rules::LogRules;

/// Derives the draft claim of a completed session billed to a payer; `None` for self-pay.
pub fn derive_claim_row(
    chain: Uuid,
    session_id: Uuid,
    session: &Session,
    rules: &LogRules,
    directory: &Directory,
    sequence: u64,
) -> Option<ClaimRow> {
    let booking = session.booking()?;
    let Payment::Payer { payer, .. } = booking.payment else {
        return None;
    };
    let clinic = booking.clinic.as_uuid();
    let therapist = booking.therapist.as_uuid();
    let mut row = ClaimRow {
        chain,
        session: session_id,
        payer: payer.as_uuid(),
        clinic,
        therapist,
        patient: booking.patient.as_uuid(),
        date_of_service: None,
        payer_key: None,
        rules_version: None,
        rules_sha256: None,
        place_of_service: None,
        billing_npi: None,
        tax_id: None,
        diagnoses: join(session.diagnoses().iter().map(|code| code.as_str())),
        total_charge_cents: 0,
        findings_json: "[]".to_owned(),
        derivation_error: None,
        last_sequence: to_i64(sequence),
        lines: Vec::new(),
    };
    let profile = match directory.clinic(clinic) {
        Some(Ok(profile)) => profile,
        Some(Err(reason)) => return Some(row.failed(format!("clinic {clinic}: {reason}"))),
        None => return Some(row.failed(format!("clinic {clinic} is not in the directory"))),
    };
    let date_of_service = session.date_of_service(profile.time_zone)?;
    row.date_of_service = Some(date_of_service);
    row.place_of_service = Some(profile.place_of_service.to_string());
    row.billing_npi = Some(profile.npi.as_str().to_owned());
    row.tax_id = Some(profile.tax_id.as_str().to_owned());
    let rendering_npi = match directory.therapist(therapist) {
        Some(Ok(npi)) => *npi,
        Some(Err(reason)) => return Some(row.failed(format!("therapist {therapist}: {reason}"))),
        None => {
            return Some(row.failed(format!("therapist {therapist} is not in the directory")));
        }
    };
    let Some(in_force) = rules.in_force(chain, payer, date_of_service) else {
        return Some(row.failed(format!(
            "no rules of payer {payer} are in force on {date_of_service}"
        )));
    };
    let policy = in_force.policy;
    row.payer_key = Some(in_force.payer_key.to_owned());
    row.rules_version = Some(i32::try_from(in_force.version).unwrap_or(i32::MAX));
    row.rules_sha256 = Some(in_force.content_sha256.to_vec());
    let facts = VisitFacts {
        clinic_time_zone: profile.time_zone,
        place_of_service: profile.place_of_service,
        clinic_npi: profile.npi,
        tax_id: profile.tax_id,
        rendering_npi,
        // The referral the visit was booked under, as recorded; the scrubber judges it (missing,
        // not yet issued, expired, or naming none of the claim's diagnoses). One the directory
        // does not hold, or whose dates are unusable, is judged as missing.
        referral: booking
            .referral
            .and_then(|referral| directory.referral(referral.0))
            .and_then(|referral| referral.as_ref().ok())
            .cloned(),
        primary_code: None,
    };
    // `date_of_service` above already returned for sessions that are not completed.
    let visit = completed_visit(session, &facts).ok()?;
    let reference = rules.reference();
    let derived = match derive_claim(&visit, policy, reference, in_force.charge_master) {
        Ok(derived) => derived,
        Err(error) => return Some(row.failed(error.to_string())),
    };
    row.findings_json = findings_json(&scrub(&derived.claim, &visit, policy, reference));
    row.diagnoses = join(derived.claim.diagnoses.iter().map(|code| code.as_str()));
    row.total_charge_cents = derived.claim.total_charge.0;
    row.lines = derived
        .claim
        .lines
        .iter()
        .map(|line| LineRow {
            code: line.code.as_str().to_owned(),
            modifiers: join(line.modifiers.iter().map(|modifier| modifier.as_str())),
            diagnosis_pointers: line
                .diagnosis_pointers
                .iter()
                .map(|pointer| pointer.letter())
                .collect(),
            units: i32::try_from(line.units).unwrap_or(i32::MAX),
            charge_cents: line.charge.0,
            rendering_npi: line.rendering_npi.as_str().to_owned(),
        })
        .collect();
    Some(row)
}

impl ClaimRow {
    fn failed(mut self, reason: String) -> Self {
        self.derivation_error = Some(reason);
        self
    }
}

/// The `claims.findings` document, serialized straight from the findings (no `serde_json::Value`
/// tree, no `String` per enum name). Keys in the order jsonb stores them.
fn findings_json(findings: &[Finding]) -> String {
    #[derive(serde::Serialize)]
    struct Document<'a> {
        #[serde(serialize_with = "as_debug")]
        code: &'a claimledger_billing::FindingCode,
        field: &'a str,
        message: &'a str,
        #[serde(serialize_with = "as_debug")]
        severity: &'a claimledger_billing::Severity,
    }
    let documents: Vec<Document<'_>> = findings
        .iter()
        .map(|finding| Document {
            code: &finding.code,
            field: &finding.field,
            message: &finding.message,
            severity: &finding.severity,
        })
        .collect();
    // Serializing plain structs of strings cannot fail.
    serde_json::to_string(&documents).unwrap_or_default()
}

/// Serializes a value as its `Debug` text (the enum variant's name), written straight into the
/// output.
fn as_debug<T: std::fmt::Debug, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{value:?}"))
}
