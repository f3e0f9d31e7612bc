//! The JSON shapes of requests and responses (the API's wire contract, documented in OpenAPI).
//!
//! These are kept apart from the domain types: requests are parsed into domain commands by the
//! handlers, which name the field that did not parse, and responses are built from domain state.

use chrono::{DateTime, NaiveDate, Utc};
use claimledger_billing::codes::Technique;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Role;

/// Create an API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKeyRequest {
    /// What the key may do.
    pub role: Role,
    /// Limit the key to these clinics (at least one, each within the caller's own scope); omit
    /// for every clinic of the chain (only a key for every clinic may).
    #[serde(default)]
    #[schema(min_items = 1)]
    pub clinic_ids: Option<Vec<Uuid>>,
    /// A label for people (who holds the key).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub label: String,
    /// When the key stops working (RFC 3339, in the future); omit for a key that lasts until
    /// revoked.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created API key. `key` is shown only in this answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ApiKeyCreated {
    /// The key's id.
    pub id: Uuid,
    /// The secret to send as `Authorization: Bearer <key>`.
    pub key: String,
    /// Its role.
    pub role: Role,
    /// Its clinic scope.
    pub clinic_ids: Option<Vec<Uuid>>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API key as its chain's admins see it: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ApiKeyView {
    /// The key's id.
    pub id: Uuid,
    /// Its role.
    pub role: Role,
    /// Its clinic scope; `null` for every clinic of the chain.
    pub clinic_ids: Option<Vec<Uuid>>,
    /// Who holds it.
    pub label: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it authenticates now: neither revoked nor expired.
    pub active: bool,
}

/// The keys of the caller's chain that the caller's scope covers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ApiKeyList {
    /// Oldest first.
    pub keys: Vec<ApiKeyView>,
}

/// Register a clinic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClinicRequest {
    /// The clinic's name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// Its billing NPI (ten digits with a valid check digit).
    #[schema(format = "npi", pattern = r"^[0-9]{10}$")]
    pub npi: String,
    /// Its federal tax id (EIN NN-NNNNNNN).
    #[schema(pattern = r"^[0-9]{2}-?[0-9]{7}$")]
    pub tax_id: String,
    /// Street address.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub address_line: String,
    /// City.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub city: String,
    /// Two-letter state code.
    #[schema(pattern = r"^[A-Z]{2}$")]
    pub state: String,
    /// Postal code.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub postal_code: String,
    /// IANA time zone, e.g. `America/New_York`: it decides each session's date of service.
    #[schema(format = "iana-time-zone", example = "America/New_York")]
    pub time_zone: String,
    /// CMS place-of-service code, e.g. `11` (office).
    #[schema(pattern = r"^[0-9]{2}$")]
    pub place_of_service: String,
}

/// A registered clinic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Clinic {
    /// Its id.
    pub id: Uuid,
    /// Its details as registered.
    #[serde(flatten)]
    pub details: ClinicRequest,
}

/// Register a therapist.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TherapistRequest {
    /// Full name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// Rendering NPI.
    #[schema(format = "npi", pattern = r"^[0-9]{10}$")]
    pub npi: String,
    /// Licence number.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub licence_number: String,
    /// Two-letter state of the licence.
    #[schema(pattern = r"^[A-Z]{2}$")]
    pub licence_state: String,
}

/// A registered therapist.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Therapist {
    /// Its id.
    pub id: Uuid,
    /// Its details as registered.
    #[serde(flatten)]
    pub details: TherapistRequest,
}

/// Register a payer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayerRequest {
    /// The payer's name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// The payer's identifier in the rules files (for example `medicare-like`): lowercase letters,
    /// digits and hyphens. The payer's id derives from it, which is how claims find their rules.
    #[schema(example = "medicare-like")]
    #[schema(pattern = r"^[a-z0-9-]{1,64}$")]
    pub rules_key: String,
}

/// A registered payer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Payer {
    /// Its id.
    pub id: Uuid,
    /// Its details as registered.
    #[serde(flatten)]
    pub details: PayerRequest,
}

/// Register a patient. Names and date of birth are PHI: they stay in PostgreSQL, never on the log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatientRequest {
    /// Given name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub given_name: String,
    /// Family name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub family_name: String,
    /// Date of birth: on or after 1900-01-01 and not after today.
    pub date_of_birth: NaiveDate,
}

/// A registered patient.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Patient {
    /// Its id: the only thing about the patient that events carry.
    pub id: Uuid,
    /// Its details as registered.
    #[serde(flatten)]
    pub details: PatientRequest,
}

/// A patient whose PHI was forgotten: only the id remains.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct PatientForgottenView {
    /// The patient's id, which sessions and claims keep referring to.
    pub id: Uuid,
    /// Always `true`: the names, date of birth and member ids are gone.
    pub forgotten: bool,
}

/// Add a patient's coverage by a payer. The member id is PHI.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CoverageRequest {
    /// The covered patient.
    pub patient_id: Uuid,
    /// The payer.
    pub payer_id: Uuid,
    /// The member or policy number.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub member_id: String,
    /// First covered day (1900-01-01 to ten years from today).
    pub valid_from: NaiveDate,
    /// Last covered day, if it ends: not before `valid_from`, at most ten years from today.
    #[serde(default)]
    pub valid_to: Option<NaiveDate>,
}

/// A recorded coverage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Coverage {
    /// Its id.
    pub id: Uuid,
    /// Its details as recorded.
    #[serde(flatten)]
    pub details: CoverageRequest,
}

/// Record a referral or prescription.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReferralRequest {
    /// The referred patient.
    pub patient_id: Uuid,
    /// The referring provider's NPI.
    #[schema(format = "npi", pattern = r"^[0-9]{10}$")]
    pub referring_npi: String,
    /// ICD-10-CM diagnoses, primary first (1 to 12), with their decimal point.
    #[schema(value_type = Vec<DiagnosisCode>, min_items = 1, max_items = 12, example = json!(["M54.50"]))]
    pub diagnoses: Vec<String>,
    /// How many visits it authorises.
    #[schema(minimum = 1, maximum = 365)]
    pub authorised_visits: u32,
    /// The day it was issued (1900-01-01 to ten years from today).
    pub issued_on: NaiveDate,
    /// The last day it authorises treatment: not before `issued_on`, at most ten years from today.
    pub expires_on: NaiveDate,
}

/// A recorded referral.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Referral {
    /// Its id.
    pub id: Uuid,
    /// Its details as recorded.
    #[serde(flatten)]
    pub details: ReferralRequest,
}

/// An ICD-10-CM code with its decimal point, as the billing core parses it (documentation only:
/// requests carry it as a plain string).
#[derive(Debug, Clone)]
pub(crate) struct DiagnosisCode;

impl utoipa::PartialSchema for DiagnosisCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "An ICD-10-CM code with its decimal point, e.g. M54.50",
            ))
            .pattern(Some(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"))
            .into()
    }
}

impl ToSchema for DiagnosisCode {}

/// Who pays for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "PaymentWire"
)]
pub(crate) enum PaymentDto {
    /// A payer, under the patient's coverage.
    Payer {
        /// The payer.
        payer_id: Uuid,
        /// The patient's coverage at that payer.
        coverage_id: Uuid,
    },
    /// The patient pays.
    SelfPay,
}

/// The payment as it arrives: a plain struct, so that a field of the wrong type is named by its
/// path (`payment.payer_id`); an internally tagged enum buffers its content and loses the path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentWire {
    kind: PaymentKind,
    #[serde(default)]
    payer_id: Option<Uuid>,
    #[serde(default)]
    coverage_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PaymentKind {
    Payer,
    SelfPay,
}

impl TryFrom<PaymentWire> for PaymentDto {
    type Error = String;

    fn try_from(wire: PaymentWire) -> Result<PaymentDto, String> {
        match (wire.kind, wire.payer_id, wire.coverage_id) {
            (PaymentKind::Payer, Some(payer_id), Some(coverage_id)) => Ok(PaymentDto::Payer {
                payer_id,
                coverage_id,
            }),
            (PaymentKind::Payer, None, _) => Err("missing field `payer_id`".to_owned()),
            (PaymentKind::Payer, _, None) => Err("missing field `coverage_id`".to_owned()),
            (PaymentKind::SelfPay, None, None) => Ok(PaymentDto::SelfPay),
            (PaymentKind::SelfPay, Some(_), _) => {
                Err("unknown field `payer_id`: a self-paid session names no payer".to_owned())
            }
            (PaymentKind::SelfPay, _, Some(_)) => {
                Err("unknown field `coverage_id`: a self-paid session names no coverage".to_owned())
            }
        }
    }
}

/// Schedule a session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleSessionRequest {
    /// The clinic.
    pub clinic_id: Uuid,
    /// The treating therapist; they must be free for the whole booked interval.
    pub therapist_id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// Who pays.
    pub payment: PaymentDto,
    /// The referral the session is given under, if any; it must be in force on the date of service.
    #[serde(default)]
    pub referral_id: Option<Uuid>,
    /// The booked start (RFC 3339, converted to UTC): at most 1,098 days (three years) before
    /// now and 366 days after.
    pub scheduled_start: DateTime<Utc>,
    /// The booked length in minutes (8 to 240).
    #[schema(minimum = 8, maximum = 240)]
    pub planned_minutes: u16,
}

/// Record a delivered service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordServiceRequest {
    /// The technique, e.g. `swedish_massage`, `myofascial_release`, `cupping` (see the enum).
    #[schema(example = "swedish_massage")]
    pub technique: String,
    /// The CPT code it is billed under; it must cover the technique.
    #[schema(example = "97124")]
    pub code: String,
    /// Minutes of direct contact; the session's services together stay within its booked length.
    #[schema(minimum = 1, maximum = 240)]
    pub minutes: u16,
    /// The body region, e.g. `lower_back`, or `other:<text>`.
    #[schema(example = "lower_back")]
    pub body_region: String,
    /// `left`, `right`, `bilateral` or `midline`.
    #[serde(default)]
    pub body_side: Option<String>,
    /// Free text; required for 97139.
    #[serde(default)]
    pub description: Option<String>,
}

/// Record a supervised modality.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordModalityRequest {
    /// `97010` (hot or cold packs) or `97012` (mechanical traction).
    #[schema(example = "97010")]
    pub code: String,
    /// Minutes applied.
    #[schema(minimum = 1, maximum = 240)]
    pub minutes: u16,
}

/// Attach diagnoses.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachDiagnosesRequest {
    /// ICD-10-CM codes with their decimal point, primary first (1 to 12).
    #[schema(value_type = Vec<DiagnosisCode>, min_items = 1, max_items = 12, example = json!(["M54.50"]))]
    pub codes: Vec<String>,
}

/// Cancel or amend, with a reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReasonRequest {
    /// Why (1 to 500 characters).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F\s][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    )]
    pub reason: String,
}

/// A recorded service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ServiceView {
    /// The id of the event that recorded it: the id to void it by.
    pub event_id: Uuid,
    /// Technique.
    pub technique: String,
    /// CPT code.
    pub code: String,
    /// Minutes.
    pub minutes: u16,
    /// Body region.
    pub body_region: String,
    /// Body side.
    pub body_side: Option<String>,
    /// Description.
    pub description: Option<String>,
}

/// A recorded modality.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ModalityView {
    /// The id of the event that recorded it: the id to void it by.
    pub event_id: Uuid,
    /// CPT code.
    pub code: String,
    /// Minutes.
    pub minutes: u16,
}

/// A session as the log records it. Its `version` is also its ETag.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct SessionView {
    /// The session's id.
    pub id: Uuid,
    /// The version to send as `If-Match`.
    pub version: u64,
    /// `scheduled`, `checked_in`, `completed`, `amending`, `cancelled` or `no_show`.
    pub status: String,
    /// The clinic.
    pub clinic_id: Uuid,
    /// The therapist.
    pub therapist_id: Uuid,
    /// The patient.
    pub patient_id: Uuid,
    /// Who pays.
    pub payment: PaymentDto,
    /// The referral, if any.
    pub referral_id: Option<Uuid>,
    /// The booked start.
    pub scheduled_start: DateTime<Utc>,
    /// The booked length.
    pub planned_minutes: u16,
    /// The date of service in the clinic's time zone.
    pub date_of_service: NaiveDate,
    /// When the patient checked in.
    pub checked_in_at: Option<DateTime<Utc>>,
    /// When the record was (last) completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Services, in order.
    pub services: Vec<ServiceView>,
    /// Modalities, in order.
    pub modalities: Vec<ModalityView>,
    /// Diagnoses, primary first.
    pub diagnoses: Vec<String>,
    /// Minutes of services recorded so far.
    pub recorded_service_minutes: u32,
    /// Why it was cancelled.
    pub cancellation_reason: Option<String>,
    /// Why it was amended, oldest first.
    pub amendment_reasons: Vec<String>,
}

/// The API word of a technique: its name in snake_case, e.g. `swedish_massage`.
pub(crate) fn technique_word(technique: Technique) -> String {
    let mut word = String::new();
    for (index, character) in format!("{technique:?}").chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            word.push('_');
        }
        word.push(character.to_ascii_lowercase());
    }
    word
}

/// Parses a technique's API word.
pub(crate) fn parse_technique(text: &str) -> Option<Technique> {
    Technique::ALL
        .into_iter()
        .find(|technique| technique_word(*technique) == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_technique_when_spelled_then_it_parses_back() {
        for technique in Technique::ALL {
            assert_eq!(parse_technique(&technique_word(technique)), Some(technique));
        }
        assert_eq!(technique_word(Technique::SwedishMassage), "swedish_massage");
        assert_eq!(parse_technique("shiatsu"), None);
    }
}
