//! From ClaimLedger's derived claim (`claimledger_billing::Claim`) to a [`Claim837`]: the derived
//! claim has the lines, codes, charges, diagnoses and NPIs; the [`ExportContext`] carries what it
//! lacks (parties, PHI, payer EDI id, control numbers, frequency), looked up by the caller at
//! export time so that no PHI ever sits on the log.

use claimledger_billing::Claim;

use super::model::{
    Address, BillingProvider, Claim837, ClaimIndicators, Frequency, Line837, Patient, Payer,
    PersonName, Provider, Subscriber, TaxIdentifier,
};
use crate::error::{BuildError, BuildProblem, Location};

/// Whether the derived claim's tax id is an EIN or an SSN (the claim stores nine digits only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxIdKind {
    /// REF*EI.
    Ein,
    /// REF*SY.
    Ssn,
}

/// The billing provider's details the derived claim does not hold (it holds NPI and tax id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingProviderDetails {
    /// NM103.
    pub name: String,
    /// What the claim's nine-digit tax id is.
    pub tax_id_kind: TaxIdKind,
    /// PRV03.
    pub taxonomy: Option<String>,
    /// N3/N4.
    pub address: Address,
}

/// Per line, what the derived line lacks, in the claim's line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineContext {
    /// REF*6R.
    pub line_control_number: String,
    /// SV101-7, required for 97139 (the visit's service description).
    pub description: Option<String>,
}

/// What an 837P claim needs besides the derived claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportContext {
    /// CLM01, at most 20 characters, mapped to the claim by the caller.
    pub patient_control_number: String,
    /// The clinic as a billing provider.
    pub billing_provider: BillingProviderDetails,
    /// The subscriber (from the coverage's PHI).
    pub subscriber: Subscriber,
    /// The patient: the subscriber or a dependent.
    pub patient: Patient,
    /// The payer's name and electronic payer id.
    pub payer: Payer,
    /// Original, replacement or void.
    pub frequency: Frequency,
    /// CLM06 to CLM09.
    pub indicators: ClaimIndicators,
    /// REF*G1.
    pub prior_authorization: Option<String>,
    /// REF*9F.
    pub referral_number: Option<String>,
    /// 2310A: the referring provider's name and NPI.
    pub referring_provider: Option<Provider>,
    /// The rendering therapist's name (the NPI comes from the claim's lines).
    pub rendering_name: PersonName,
    /// The rendering therapist's taxonomy.
    pub rendering_taxonomy: Option<String>,
    /// One entry per claim line.
    pub lines: Vec<LineContext>,
}

impl Claim837 {
    /// The 837P claim for `claim`, completed by `context`.
    pub fn from_derived(claim: &Claim, context: ExportContext) -> Result<Claim837, BuildError> {
        let refuse = |segment, element, problem| BuildError {
            location: Location {
                segment,
                element,
                component: None,
                loop_id: "2300",
                context: format!("CLM01 {}", context.patient_control_number),
            },
            problem,
        };
        if context.lines.len() != claim.lines.len() {
            return Err(refuse(
                "LX",
                0,
                BuildProblem::LineCountMismatch {
                    context: context.lines.len(),
                    claim: claim.lines.len(),
                },
            ));
        }
        let rendering_npi = match claim.lines.split_first() {
            Some((first, rest)) => {
                if let Some(other) = rest.iter().find(|l| l.rendering_npi != first.rendering_npi) {
                    return Err(refuse(
                        "NM1",
                        9,
                        BuildProblem::MixedRenderingProviders(
                            first.rendering_npi.to_string(),
                            other.rendering_npi.to_string(),
                        ),
                    ));
                }
                first.rendering_npi.to_string()
            }
            None => return Err(refuse("LX", 0, BuildProblem::NoEntries)),
        };
        let lines = claim
            .lines
            .iter()
            .zip(context.lines)
            .map(|(line, extra)| Line837 {
                procedure_code: line.code.as_str().to_owned(),
                modifiers: line
                    .modifiers
                    .iter()
                    .map(|m| m.as_str().to_owned())
                    .collect(),
                description: extra.description,
                charge_cents: line.charge.get(),
                units: line.units,
                // Derived pointers index item 21 from 0; SV107 counts from 1.
                diagnosis_pointers: line
                    .diagnosis_pointers
                    .iter()
                    .map(|pointer| pointer.0.saturating_add(1))
                    .collect(),
                date_of_service: line.date_of_service,
                line_control_number: extra.line_control_number,
            })
            .collect();
        let details = context.billing_provider;
        let tax_id = claim.tax_id.as_str().to_owned();
        Ok(Claim837 {
            billing_provider: BillingProvider {
                name: details.name,
                npi: claim.billing_npi.to_string(),
                tax_id: match details.tax_id_kind {
                    TaxIdKind::Ein => TaxIdentifier::Ein(tax_id),
                    TaxIdKind::Ssn => TaxIdentifier::Ssn(tax_id),
                },
                taxonomy: details.taxonomy,
                address: details.address,
            },
            subscriber: context.subscriber,
            patient: context.patient,
            payer: context.payer,
            patient_control_number: context.patient_control_number,
            place_of_service: claim.place_of_service.to_string(),
            frequency: context.frequency,
            indicators: context.indicators,
            diagnoses: claim
                .diagnoses
                .iter()
                .map(|code| code.without_decimal())
                .collect(),
            prior_authorization: context.prior_authorization,
            referral_number: context.referral_number,
            referring_provider: context.referring_provider,
            rendering_provider: Some(Provider {
                name: context.rendering_name,
                npi: rendering_npi,
                taxonomy: context.rendering_taxonomy,
            }),
            lines,
        })
    }
}
