//! The 835 (005010X221A1) remittance advice, read into a typed [`Remittance835`] and balanced:
//! per line `SVC02 − Σ CAS = SVC03`, per claim `CLP03 − Σ CAS (claim and lines) = CLP04`, per
//! transaction set `Σ CLP04 − Σ PLB = BPR02`. A file that breaks any rule is refused whole; an
//! imbalance is never "plugged".

pub(crate) mod read;

use chrono::NaiveDate;

/// One 835 interchange: its envelope and its transaction sets (one payment each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remittance835 {
    /// ISA13.
    pub interchange_control_number: String,
    /// ISA06, without padding.
    pub sender_id: String,
    /// ISA08, without padding.
    pub receiver_id: String,
    /// GS06.
    pub group_control_number: String,
    /// One per ST/SE.
    pub payments: Vec<Payment835>,
}

/// BPR01: what the transaction set is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// `C`: payment accompanies the remittance advice.
    PaymentWithRemittance,
    /// `D`: payment only.
    PaymentOnly,
    /// `H`: notification only (BPR02 is 0).
    NotificationOnly,
    /// `I`: remittance information only (the money travels separately).
    RemittanceOnly,
    /// `P`: prenotification of future transfers.
    Prenotification,
    /// `U`: split payment and remittance.
    Split,
    /// `X`: the handling party's option to split.
    HandlingPartysOption,
}

/// BPR04: how the money travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    /// `ACH`: automated clearing house (EFT).
    Ach,
    /// `BOP`: financial institution option.
    FinancialInstitutionOption,
    /// `CHK`: cheque.
    Check,
    /// `FWT`: federal reserve wire transfer.
    Wire,
    /// `NON`: no payment.
    NonPayment,
}

/// One ST/SE: one payment (or notice) from one payer to one payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment835 {
    /// ST02.
    pub control_number: String,
    /// BPR01.
    pub handling: Handling,
    /// BPR02, in cents (never negative).
    pub amount_cents: i64,
    /// BPR04.
    pub method: PaymentMethod,
    /// BPR16: the payment's effective date.
    pub payment_date: NaiveDate,
    /// TRN02: the cheque or EFT trace number, the key that makes an import idempotent.
    pub trace_number: String,
    /// TRN03: the payer's originating company id.
    pub originator_id: String,
    /// DTM*405.
    pub production_date: Option<NaiveDate>,
    /// Loop 1000A.
    pub payer: Party,
    /// Loop 1000B.
    pub payee: Party,
    /// Loops 2100, in file order.
    pub claims: Vec<ClaimPayment>,
    /// PLB amounts, one entry per reason/amount pair.
    pub provider_adjustments: Vec<ProviderAdjustment>,
}

/// N1 with its identifier: the payer (N1*PR) or the payee (N1*PE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// N102.
    pub name: String,
    /// N103, e.g. `XX` (NPI), `FI` (tax id), `XV` (plan id).
    pub id_qualifier: Option<String>,
    /// N104 (an NPI with `XX`, checked).
    pub id: Option<String>,
    /// REF*2U (payer) or REF*TJ (payee), when sent.
    pub additional_id: Option<String>,
}

impl Party {
    /// The NPI, when the party is identified by one.
    pub fn npi(&self) -> Option<&str> {
        match self.id_qualifier.as_deref() {
            Some("XX") => self.id.as_deref(),
            _ => None,
        }
    }
}

/// CLP02.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    /// `1`.
    ProcessedAsPrimary,
    /// `2`.
    ProcessedAsSecondary,
    /// `3`.
    ProcessedAsTertiary,
    /// `4`: denied.
    Denied,
    /// `19`: processed as primary, forwarded to another payer.
    ProcessedAsPrimaryForwarded,
    /// `20`.
    ProcessedAsSecondaryForwarded,
    /// `21`.
    ProcessedAsTertiaryForwarded,
    /// `22`: reversal of a previous payment; every amount is negated.
    Reversal,
    /// `23`: not our claim, forwarded.
    NotOurClaim,
    /// `25`: predetermination pricing only, no payment.
    Predetermination,
}

/// CAS01: who bears an adjustment (005010 allows these four; `CR` was 4010 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdjustmentGroup {
    /// `CO`.
    ContractualObligation,
    /// `OA`.
    OtherAdjustment,
    /// `PI`.
    PayerInitiated,
    /// `PR`.
    PatientResponsibility,
}

/// One reason/amount of a CAS segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// CAS01.
    pub group: AdjustmentGroup,
    /// CARC (CAS02, 05, …).
    pub reason: String,
    /// In cents; positive reduces payment, negative increases it.
    pub amount_cents: i64,
}

/// NM1*QC: the patient as the payer names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientName {
    /// NM103.
    pub last: String,
    /// NM104.
    pub first: Option<String>,
    /// NM109 (usually the member id).
    pub id: Option<String>,
}

/// Loop 2100: the payer's answer for one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPayment {
    /// CLP01: our CLM01.
    pub patient_control_number: String,
    /// CLP02.
    pub status: ClaimStatus,
    /// CLP03.
    pub charge_cents: i64,
    /// CLP04.
    pub paid_cents: i64,
    /// CLP05 (not used on reversals).
    pub patient_responsibility_cents: Option<i64>,
    /// CLP06.
    pub filing_code: String,
    /// CLP07: the payer's claim control number (REF*F8 of a replacement).
    pub payer_claim_number: Option<String>,
    /// Claim-level CAS.
    pub adjustments: Vec<Adjustment>,
    /// NM1*QC.
    pub patient: Option<PatientName>,
    /// Loops 2110, in order; a payer may answer only some of the submitted lines.
    pub lines: Vec<ServicePayment>,
}

/// SVC01 / SVC06: a procedure as the payer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procedure {
    /// Component 1, e.g. `HC`.
    pub qualifier: String,
    /// Component 2.
    pub code: String,
    /// Components 3 to 6.
    pub modifiers: Vec<String>,
}

/// Loop 2110: the payer's answer for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePayment {
    /// SVC01: the procedure paid.
    pub procedure: Procedure,
    /// SVC02.
    pub charge_cents: i64,
    /// SVC03.
    pub paid_cents: i64,
    /// SVC05: units paid (absent means 1; negative on a reversal).
    pub paid_units: Option<i64>,
    /// SVC06: the procedure as submitted, when the payer recoded it.
    pub submitted_procedure: Option<Procedure>,
    /// DTM*472.
    pub date_of_service: Option<NaiveDate>,
    /// REF*6R: our line item control number.
    pub line_control_number: Option<String>,
    /// AMT*B6: allowed, informational (not part of balancing).
    pub allowed_cents: Option<i64>,
    /// Line CAS.
    pub adjustments: Vec<Adjustment>,
    /// LQ*HE remark codes (RARCs).
    pub remarks: Vec<String>,
}

/// One PLB reason/amount: a provider-level adjustment (interest, recoupment, forward balance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAdjustment {
    /// PLB01: the provider identifier.
    pub provider_id: String,
    /// PLB02: the end of the provider's fiscal period.
    pub fiscal_period_end: NaiveDate,
    /// The reason code (PLB03-1, 05-1, …), e.g. `WO`, `L6`, `FB`.
    pub reason: String,
    /// The reference (PLB03-2, …), e.g. the claim a recoupment concerns.
    pub reference: Option<String>,
    /// In cents; positive reduces the payment, negative increases it.
    pub amount_cents: i64,
}
