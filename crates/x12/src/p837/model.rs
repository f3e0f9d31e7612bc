//! The typed input of an 837P (005010X222A1): one interchange with its trading partner and
//! control numbers, transaction sets, and claims each carrying their billing provider,
//! subscriber, patient and payer. Text fields hold what goes on the wire; the builder checks
//! them.

use chrono::{NaiveDate, NaiveDateTime};

use crate::writer::{Delimiters, Layout};

/// One 837P interchange: ISA/GS envelope, one functional group, one or more transaction sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interchange837 {
    /// Who sends to whom and how.
    pub partner: TradingPartner,
    /// ISA13; the caller owns its uniqueness per trading partner.
    pub interchange_control_number: u32,
    /// GS06; the caller owns its uniqueness.
    pub group_control_number: u32,
    /// ISA09/10, GS04/05 and BHT04/05: when the batch was created, passed in (no clock here).
    pub created: NaiveDateTime,
    /// The delimiters declared in the ISA.
    pub delimiters: Delimiters,
    /// Line breaks between segments or none.
    pub layout: Layout,
    /// The transaction sets (ST/SE), in order.
    pub transactions: Vec<Transaction837>,
}

/// The per-clearinghouse configuration of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingPartner {
    /// ISA05, e.g. `ZZ` (mutually defined) or `30` (federal tax id).
    pub sender_qualifier: String,
    /// ISA06, at most 15 characters.
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08, at most 15 characters.
    pub receiver_id: String,
    /// GS02, 2 to 15 characters.
    pub application_sender_code: String,
    /// GS03, 2 to 15 characters.
    pub application_receiver_code: String,
    /// ISA15.
    pub usage: Usage,
    /// Loop 1000A.
    pub submitter: Submitter,
    /// Loop 1000B NM103.
    pub receiver_name: String,
    /// Loop 1000B NM109 (NM108 is always `46`).
    pub receiver_id_code: String,
}

/// ISA15: test or production data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `T`.
    Test,
    /// `P`.
    Production,
}

/// Loop 1000A: who submits (the chain, as the clearinghouse knows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitter {
    /// NM103.
    pub name: String,
    /// NM109: the ETIN the clearinghouse assigned.
    pub etin: String,
    /// PER02.
    pub contact_name: String,
    /// PER04 (`TE`): digits only, area code first.
    pub contact_phone: String,
}

/// One ST/SE transaction set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction837 {
    /// ST02 = SE02, written with at least 4 digits; the caller owns its uniqueness.
    pub control_number: u32,
    /// BHT03: the originator's reference for this batch, 1 to 50 characters.
    pub reference: String,
    /// The claims; the builder groups them into the HL tree by billing provider, then
    /// subscriber and payer, then patient.
    pub claims: Vec<Claim837>,
}

/// A street address (N3/N4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// N301.
    pub line1: String,
    /// N302.
    pub line2: Option<String>,
    /// N401.
    pub city: String,
    /// N402: two-letter state code.
    pub state: String,
    /// N403: 5 or 9 digits.
    pub postal_code: String,
}

/// A person's name as NM1 carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName {
    /// NM103.
    pub last: String,
    /// NM104.
    pub first: String,
}

/// DMG03.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// `F`.
    Female,
    /// `M`.
    Male,
    /// `U`.
    Unknown,
}

/// A subscriber or patient: name, birth date, sex and address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Person {
    /// NM103/NM104.
    pub name: PersonName,
    /// DMG02.
    pub birth_date: NaiveDate,
    /// DMG03.
    pub sex: Sex,
    /// N3/N4: required for the patient, and for the subscriber when the subscriber is the
    /// patient.
    pub address: Option<Address>,
}

/// Loop 2010AA REF: the billing provider's tax id and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaxIdentifier {
    /// REF*EI: an employer identification number, 9 digits.
    Ein(String),
    /// REF*SY: a social security number, 9 digits.
    Ssn(String),
}

/// Loops 2000A/2010AA: the billing provider (the clinic).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BillingProvider {
    /// NM103: the organisation's name.
    pub name: String,
    /// NM109: the NPI.
    pub npi: String,
    /// REF*EI or REF*SY.
    pub tax_id: TaxIdentifier,
    /// PRV03: the taxonomy code (10 characters, e.g. `225700000X`).
    pub taxonomy: Option<String>,
    /// N3/N4: a street address.
    pub address: Address,
}

/// SBR01: whose turn it is to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayerResponsibility {
    /// `P`.
    Primary,
    /// `S`.
    Secondary,
    /// `T`.
    Tertiary,
}

/// Loop 2000B/2010BA: the subscriber (the insured).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscriber {
    /// SBR01.
    pub responsibility: PayerResponsibility,
    /// SBR03: group or policy number.
    pub group_number: Option<String>,
    /// SBR09: claim filing indicator, e.g. `CI` commercial, `BL`, `MB`, `WC`, `AM`.
    pub filing_indicator: String,
    /// 2010BA NM109 (`MI`): the member id.
    pub member_id: String,
    /// Name, birth date, sex, address.
    pub person: Person,
}

/// PAT01: how the patient relates to the subscriber, when not the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relationship {
    /// `01`.
    Spouse,
    /// `19`.
    Child,
    /// `20`.
    Employee,
    /// `21`.
    Unknown,
    /// `39`.
    OrganDonor,
    /// `40`.
    CadaverDonor,
    /// `53`.
    LifePartner,
    /// `G8`.
    Other,
}

/// Who the patient is: the subscriber (SBR02 = 18) or a dependent with a 2000C loop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Patient {
    /// The subscriber is the patient.
    Subscriber,
    /// Someone else, in loop 2000C/2010CA.
    Dependent {
        /// PAT01.
        relationship: Relationship,
        /// NM1*QC, N3/N4 (required), DMG.
        person: Person,
    },
}

/// Loop 2010BB: the payer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payer {
    /// NM103.
    pub name: String,
    /// NM109 (`PI`): the electronic payer id at this clearinghouse.
    pub id: String,
}

/// CLM05-3 with what each frequency needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frequency {
    /// `1`: an original claim.
    Original,
    /// `7`: replaces the claim the payer knows by this number (REF*F8).
    Replacement {
        /// The payer's claim control number (CLP07 of its 835).
        payer_claim_number: String,
    },
    /// `8`: voids the claim the payer knows by this number (REF*F8).
    Void {
        /// The payer's claim control number.
        payer_claim_number: String,
    },
}

/// CLM06 to CLM09, which chains set as policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimIndicators {
    /// CLM06: the provider's signature is on file (`Y`/`N`).
    pub provider_signature_on_file: bool,
    /// CLM07.
    pub assignment: Assignment,
    /// CLM08: benefits assigned to the provider (`Y`/`N`, or `W` not applicable).
    pub benefits_assigned: BenefitsAssignment,
    /// CLM09.
    pub release_of_information: ReleaseOfInformation,
}

impl Default for ClaimIndicators {
    /// Signed, assigned, benefits assigned, release signed: a clinic billing on the
    /// patient's behalf.
    fn default() -> Self {
        ClaimIndicators {
            provider_signature_on_file: true,
            assignment: Assignment::Assigned,
            benefits_assigned: BenefitsAssignment::Yes,
            release_of_information: ReleaseOfInformation::Signed,
        }
    }
}

/// CLM07: the provider accepts assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// `A`.
    Assigned,
    /// `B`: assignment accepted on clinical lab services only.
    LabOnly,
    /// `C`.
    NotAssigned,
}

/// CLM08.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenefitsAssignment {
    /// `Y`.
    Yes,
    /// `N`.
    No,
    /// `W`: not applicable.
    NotApplicable,
}

/// CLM09.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOfInformation {
    /// `I`: informed consent without a signature.
    InformedConsent,
    /// `Y`: signed statement on file.
    Signed,
}

/// A referring or rendering provider (2310A, 2310B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// NM103/NM104.
    pub name: PersonName,
    /// NM109 (`XX`).
    pub npi: String,
    /// PRV03 (rendering only).
    pub taxonomy: Option<String>,
}

/// Loop 2300: one claim with its parties and lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim837 {
    /// 2000A/2010AA.
    pub billing_provider: BillingProvider,
    /// 2000B/2010BA.
    pub subscriber: Subscriber,
    /// The subscriber or a dependent.
    pub patient: Patient,
    /// 2010BB.
    pub payer: Payer,
    /// CLM01: at most 20 characters; the 835 returns it in CLP01.
    pub patient_control_number: String,
    /// CLM05-1: two digits, e.g. `11`.
    pub place_of_service: String,
    /// CLM05-3 and REF*F8.
    pub frequency: Frequency,
    /// CLM06 to CLM09.
    pub indicators: ClaimIndicators,
    /// HI: ICD-10-CM codes, primary first, at most 12; with or without the dot.
    pub diagnoses: Vec<String>,
    /// REF*G1.
    pub prior_authorization: Option<String>,
    /// REF*9F.
    pub referral_number: Option<String>,
    /// 2310A.
    pub referring_provider: Option<Provider>,
    /// 2310B: written only when its NPI differs from the billing provider's.
    pub rendering_provider: Option<Provider>,
    /// 2400, at most 50; CLM02 is their sum.
    pub lines: Vec<Line837>,
}

/// Loop 2400: one service line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line837 {
    /// SV101-2: the CPT/HCPCS code.
    pub procedure_code: String,
    /// SV101-3 to -6: at most four modifiers.
    pub modifiers: Vec<String>,
    /// SV101-7: required for unlisted codes (97139).
    pub description: Option<String>,
    /// SV102, in cents.
    pub charge_cents: i64,
    /// SV104.
    pub units: u32,
    /// SV107: 1-based pointers into the claim's diagnoses, at most four.
    pub diagnosis_pointers: Vec<u8>,
    /// DTP*472.
    pub date_of_service: NaiveDate,
    /// REF*6R: at most 30 characters, unique in the claim; the 835 returns it.
    pub line_control_number: String,
}
