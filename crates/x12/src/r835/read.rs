//! The 835 loop reader: a cursor over one transaction set's segments, one function per loop,
//! then the three balancing rules.

use claimledger_billing::Npi;

use super::{
    Adjustment, AdjustmentGroup, ClaimPayment, ClaimStatus, Handling, Party, PatientName,
    Payment835, PaymentMethod, Procedure, ProviderAdjustment, Remittance835, ServicePayment,
};
use crate::error::{ParseError, ParseProblem};
use crate::tokenizer::{Expected, Segment, envelope, tokenize};

const EXPECTED: Expected = Expected {
    functional_id: "HP",
    transaction_id: "835",
    version: "005010X221A1",
};
/// CLP01 may hold up to 38 characters in X12, even though ours are at most 20.
const MAX_PATIENT_CONTROL_NUMBER: usize = 38;
const MAX_REFERENCE: usize = 50;
const CAS_TRIOS: usize = 6;
const PLB_PAIRS: usize = 6;

/// Reads an 835 file, checks its envelope and balancing, and returns its payments; any error
/// refuses the whole file.
pub fn parse_835(bytes: &[u8]) -> Result<Remittance835, ParseError> {
    let tokens = tokenize(bytes)?;
    let envelope = envelope(&tokens, EXPECTED)?;
    let payments = envelope
        .transactions
        .iter()
        .map(|set| read_transaction(set.segments))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Remittance835 {
        interchange_control_number: envelope.interchange_control_number,
        sender_id: envelope.sender_id,
        receiver_id: envelope.receiver_id,
        group_control_number: envelope.group_control_number,
        payments,
    })
}

/// A cursor over ST..SE; SE is always last (the envelope checked it), so `peek` never runs out.
struct Cursor<'s, 'a> {
    segments: &'s [Segment<'a>],
    index: usize,
}

impl<'s, 'a> Cursor<'s, 'a> {
    fn peek(&self) -> &'s Segment<'a> {
        &self.segments[self.index.min(self.segments.len() - 1)]
    }

    fn next(&mut self) -> &'s Segment<'a> {
        let segment = self.peek();
        self.index += 1;
        segment
    }

    /// The next segment, which must be `id`.
    fn expect(&mut self, id: &str, expected: &'static str) -> Result<&'s Segment<'a>, ParseError> {
        let segment = self.next();
        if segment.id == id {
            Ok(segment)
        } else {
            Err(segment.error(ParseProblem::UnexpectedSegment { expected }))
        }
    }

    /// Takes segments while their id is one of `ids`.
    fn take_while(&mut self, ids: &[&str]) -> Vec<&'s Segment<'a>> {
        let mut taken = Vec::new();
        while ids.contains(&self.peek().id) && self.peek().id != "SE" {
            taken.push(self.next());
        }
        taken
    }
}

fn read_transaction(segments: &[Segment<'_>]) -> Result<Payment835, ParseError> {
    let mut cursor = Cursor { segments, index: 0 };
    let st = cursor.next();
    let bpr = cursor.expect("BPR", "BPR after ST")?;
    let handling = match bpr.code(
        1,
        &["C", "D", "H", "I", "P", "U", "X"],
        "a BPR01 handling code",
    )? {
        "C" => Handling::PaymentWithRemittance,
        "D" => Handling::PaymentOnly,
        "H" => Handling::NotificationOnly,
        "I" => Handling::RemittanceOnly,
        "P" => Handling::Prenotification,
        "U" => Handling::Split,
        _ => Handling::HandlingPartysOption,
    };
    let amount_cents = bpr.amount(2)?;
    if amount_cents < 0 {
        return Err(bpr.element_error(2, ParseProblem::NegativePayment));
    }
    bpr.code(3, &["C", "D"], "C (credit) or D (debit)")?;
    let method = match bpr.code(
        4,
        &["ACH", "BOP", "CHK", "FWT", "NON"],
        "ACH, BOP, CHK, FWT or NON",
    )? {
        "ACH" => PaymentMethod::Ach,
        "BOP" => PaymentMethod::FinancialInstitutionOption,
        "CHK" => PaymentMethod::Check,
        "FWT" => PaymentMethod::Wire,
        _ => PaymentMethod::NonPayment,
    };
    let payment_date = bpr.date(16)?;
    let trn = cursor.expect("TRN", "TRN after BPR")?;
    trn.code(1, &["1"], "1 (current transaction trace numbers)")?;
    let trace_number = trn.required_text(2, MAX_REFERENCE)?.to_owned();
    let originator_id = trn.required_text(3, 10)?.to_owned();
    let mut production_date = None;
    for segment in cursor.take_while(&["CUR", "REF", "DTM"]) {
        if segment.id == "DTM" && segment.get(1) == "405" {
            production_date = Some(segment.date(2)?);
        }
    }
    let payer = read_party(&mut cursor, "PR", "2U")?;
    let payee = read_party(&mut cursor, "PE", "TJ")?;
    let mut claims = Vec::new();
    let mut provider_adjustments = Vec::new();
    loop {
        let segment = cursor.peek();
        match segment.id {
            "LX" if provider_adjustments.is_empty() => {
                cursor.next().number(1)?;
                cursor.take_while(&["TS3", "TS2"]);
            }
            "CLP" if provider_adjustments.is_empty() => {
                claims.push(read_claim(&mut cursor)?);
            }
            "PLB" => {
                cursor.next();
                provider_adjustments.extend(read_plb(segment)?);
            }
            "SE" => break,
            _ => {
                let expected = if provider_adjustments.is_empty() {
                    "LX, CLP, PLB or SE"
                } else {
                    "PLB or SE"
                };
                return Err(segment.error(ParseProblem::UnexpectedSegment { expected }));
            }
        }
    }
    let claims_paid = checked_sum(bpr, 2, claims.iter().map(|c| c.paid_cents))?;
    let plb_total = checked_sum(bpr, 2, provider_adjustments.iter().map(|p| p.amount_cents))?;
    if claims_paid.checked_sub(plb_total) != Some(amount_cents) {
        return Err(bpr.element_error(
            2,
            ParseProblem::PaymentImbalance {
                claims_paid,
                provider_adjustments: plb_total,
                payment: amount_cents,
            },
        ));
    }
    Ok(Payment835 {
        control_number: st.get(2).to_owned(),
        handling,
        amount_cents,
        method,
        payment_date,
        trace_number,
        originator_id,
        production_date,
        payer,
        payee,
        claims,
        provider_adjustments,
    })
}

fn checked_sum(
    at: &Segment<'_>,
    element: usize,
    amounts: impl Iterator<Item = i64>,
) -> Result<i64, ParseError> {
    let mut total = 0_i64;
    for amount in amounts {
        total = total
            .checked_add(amount)
            .ok_or_else(|| at.element_error(element, ParseProblem::AmountOverflow))?;
    }
    Ok(total)
}

fn read_party(
    cursor: &mut Cursor<'_, '_>,
    entity: &str,
    ref_qualifier: &str,
) -> Result<Party, ParseError> {
    let expected = if entity == "PR" {
        "N1*PR (payer identification)"
    } else {
        "N1*PE (payee identification)"
    };
    let n1 = cursor.next();
    if n1.id != "N1" || n1.get(1) != entity {
        return Err(n1.error(ParseProblem::UnexpectedSegment { expected }));
    }
    let name = n1.required_text(2, 60)?.to_owned();
    let id_qualifier = n1.optional(3).map(str::to_owned);
    let id = n1.optional(4).map(str::to_owned);
    if id_qualifier.is_some() != id.is_some() {
        let element = if id.is_some() { 3 } else { 4 };
        return Err(n1.element_error(element, ParseProblem::MissingElement));
    }
    if let (Some("XX"), Some(npi)) = (id_qualifier.as_deref(), id.as_deref())
        && Npi::parse("N104", npi).is_err()
    {
        return Err(n1.element_error(4, ParseProblem::InvalidNpi(npi.to_owned())));
    }
    let mut additional_id = None;
    let follow: &[&str] = if entity == "PR" {
        &["N3", "N4", "REF", "PER"]
    } else {
        &["N3", "N4", "REF", "RDM"]
    };
    for segment in cursor.take_while(follow) {
        if segment.id == "REF" && segment.get(1) == ref_qualifier {
            additional_id = Some(segment.required_text(2, MAX_REFERENCE)?.to_owned());
        }
    }
    Ok(Party {
        name,
        id_qualifier,
        id,
        additional_id,
    })
}

fn read_claim(cursor: &mut Cursor<'_, '_>) -> Result<ClaimPayment, ParseError> {
    let clp = cursor.next();
    let patient_control_number = clp.required_text(1, MAX_PATIENT_CONTROL_NUMBER)?.to_owned();
    let status = match clp.code(
        2,
        &["1", "2", "3", "4", "19", "20", "21", "22", "23", "25"],
        "a CLP02 claim status (1, 2, 3, 4, 19, 20, 21, 22, 23, 25)",
    )? {
        "1" => ClaimStatus::ProcessedAsPrimary,
        "2" => ClaimStatus::ProcessedAsSecondary,
        "3" => ClaimStatus::ProcessedAsTertiary,
        "4" => ClaimStatus::Denied,
        "19" => ClaimStatus::ProcessedAsPrimaryForwarded,
        "20" => ClaimStatus::ProcessedAsSecondaryForwarded,
        "21" => ClaimStatus::ProcessedAsTertiaryForwarded,
        "22" => ClaimStatus::Reversal,
        "23" => ClaimStatus::NotOurClaim,
        _ => ClaimStatus::Predetermination,
    };
    let charge_cents = clp.amount(3)?;
    let paid_cents = clp.amount(4)?;
    let patient_responsibility_cents = clp.optional_amount(5)?;
    let filing_code = clp.required_text(6, 2)?.to_owned();
    let payer_claim_number = clp.optional(7).map(str::to_owned);
    if let Some(number) = payer_claim_number
        .as_ref()
        .filter(|n| n.len() > MAX_REFERENCE)
    {
        let value = number.clone();
        return Err(clp.element_error(
            7,
            ParseProblem::TooLong {
                value,
                max: MAX_REFERENCE,
            },
        ));
    }
    let mut adjustments = Vec::new();
    let mut patient = None;
    let claim_level = [
        "CAS", "NM1", "MIA", "MOA", "REF", "DTM", "PER", "AMT", "QTY",
    ];
    for segment in cursor.take_while(&claim_level) {
        match segment.id {
            "CAS" => adjustments.extend(read_cas(segment)?),
            "NM1" if segment.get(1) == "QC" => {
                patient = Some(PatientName {
                    last: segment.required_text(3, 60)?.to_owned(),
                    first: segment.optional(4).map(str::to_owned),
                    id: segment.optional(9).map(str::to_owned),
                });
            }
            _ => {}
        }
    }
    let mut lines = Vec::new();
    while cursor.peek().id == "SVC" {
        lines.push(read_line(cursor)?);
    }
    let mut adjusted = checked_sum(clp, 4, adjustments.iter().map(|a| a.amount_cents))?;
    for line in &lines {
        let line_total = checked_sum(clp, 4, line.adjustments.iter().map(|a| a.amount_cents))?;
        adjusted = adjusted
            .checked_add(line_total)
            .ok_or_else(|| clp.element_error(4, ParseProblem::AmountOverflow))?;
    }
    if charge_cents.checked_sub(adjusted) != Some(paid_cents) {
        return Err(clp.element_error(
            4,
            ParseProblem::ClaimImbalance {
                charge: charge_cents,
                adjustments: adjusted,
                paid: paid_cents,
            },
        ));
    }
    Ok(ClaimPayment {
        patient_control_number,
        status,
        charge_cents,
        paid_cents,
        patient_responsibility_cents,
        filing_code,
        payer_claim_number,
        adjustments,
        patient,
        lines,
    })
}

fn procedure(segment: &Segment<'_>, element: usize) -> Result<Procedure, ParseError> {
    let components = segment.components(element);
    let qualifier = components.first().copied().unwrap_or_default();
    let code = components.get(1).copied().unwrap_or_default();
    if qualifier.is_empty() {
        return Err(segment.error_at(Some(element), Some(1), ParseProblem::MissingElement));
    }
    if code.is_empty() {
        return Err(segment.error_at(Some(element), Some(2), ParseProblem::MissingElement));
    }
    Ok(Procedure {
        qualifier: qualifier.to_owned(),
        code: code.to_owned(),
        modifiers: components
            .iter()
            .skip(2)
            .take(4)
            .filter(|modifier| !modifier.is_empty())
            .map(|modifier| (*modifier).to_owned())
            .collect(),
    })
}

fn read_line(cursor: &mut Cursor<'_, '_>) -> Result<ServicePayment, ParseError> {
    let svc = cursor.next();
    let procedure_paid = procedure(svc, 1)?;
    let charge_cents = svc.amount(2)?;
    let paid_cents = svc.amount(3)?;
    let paid_units =
        match svc.optional(5) {
            Some(units) => Some(whole_quantity(units).ok_or_else(|| {
                svc.element_error(5, ParseProblem::InvalidNumber(units.to_owned()))
            })?),
            None => None,
        };
    let submitted_procedure = match svc.optional(6) {
        Some(_) => Some(procedure(svc, 6)?),
        None => None,
    };
    let mut line = ServicePayment {
        procedure: procedure_paid,
        charge_cents,
        paid_cents,
        paid_units,
        submitted_procedure,
        date_of_service: None,
        line_control_number: None,
        allowed_cents: None,
        adjustments: Vec::new(),
        remarks: Vec::new(),
    };
    for segment in cursor.take_while(&["DTM", "CAS", "REF", "AMT", "QTY", "LQ"]) {
        match (segment.id, segment.get(1)) {
            ("DTM", "472") => line.date_of_service = Some(segment.date(2)?),
            ("DTM", _) => {
                segment.date(2)?;
            }
            ("CAS", _) => line.adjustments.extend(read_cas(segment)?),
            ("REF", "6R") => {
                line.line_control_number =
                    Some(segment.required_text(2, MAX_REFERENCE)?.to_owned());
            }
            ("AMT", "B6") => line.allowed_cents = Some(segment.amount(2)?),
            ("LQ", "HE") => line.remarks.push(segment.required_text(2, 30)?.to_owned()),
            _ => {}
        }
    }
    let adjusted = checked_sum(svc, 3, line.adjustments.iter().map(|a| a.amount_cents))?;
    if charge_cents.checked_sub(adjusted) != Some(paid_cents) {
        return Err(svc.element_error(
            3,
            ParseProblem::LineImbalance {
                charge: charge_cents,
                adjustments: adjusted,
                paid: paid_cents,
            },
        ));
    }
    Ok(line)
}

/// A quantity that must be whole (units), possibly negated on a reversal; `2.0` is 2.
fn whole_quantity(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let digits = digits.strip_suffix(".0").unwrap_or(digits);
    let valid =
        !digits.is_empty() && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit());
    let value = valid.then(|| digits.parse::<i64>().ok()).flatten()?;
    Some(if negative { -value } else { value })
}

fn read_cas(cas: &Segment<'_>) -> Result<Vec<Adjustment>, ParseError> {
    let group = match cas.code(
        1,
        &["CO", "OA", "PI", "PR"],
        "CO, OA, PI or PR (CR is not 005010)",
    )? {
        "CO" => AdjustmentGroup::ContractualObligation,
        "OA" => AdjustmentGroup::OtherAdjustment,
        "PI" => AdjustmentGroup::PayerInitiated,
        _ => AdjustmentGroup::PatientResponsibility,
    };
    let mut adjustments = Vec::new();
    for trio in 0..CAS_TRIOS {
        let reason_element = 2 + trio * 3;
        if trio > 0 && cas.optional(reason_element).is_none() {
            if cas.optional(reason_element + 1).is_some() {
                return Err(cas.element_error(reason_element, ParseProblem::MissingElement));
            }
            continue;
        }
        let reason = cas.required_text(reason_element, 5)?;
        if !reason.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(cas.element_error(
                reason_element,
                ParseProblem::InvalidCode {
                    value: reason.to_owned(),
                    allowed: "a claim adjustment reason code (letters and digits)",
                },
            ));
        }
        adjustments.push(Adjustment {
            group,
            reason: reason.to_owned(),
            amount_cents: cas.amount(reason_element + 1)?,
        });
    }
    Ok(adjustments)
}

fn read_plb(plb: &Segment<'_>) -> Result<Vec<ProviderAdjustment>, ParseError> {
    let provider_id = plb.required_text(1, 50)?;
    let fiscal_period_end = plb.date(2)?;
    let mut adjustments = Vec::new();
    for pair in 0..PLB_PAIRS {
        let element = 3 + pair * 2;
        if pair > 0 && plb.optional(element).is_none() {
            if plb.optional(element + 1).is_some() {
                return Err(plb.element_error(element, ParseProblem::MissingElement));
            }
            continue;
        }
        let components = plb.components(element);
        let reason = components.first().copied().unwrap_or_default();
        if reason.is_empty() {
            return Err(plb.error_at(Some(element), Some(1), ParseProblem::MissingElement));
        }
        adjustments.push(ProviderAdjustment {
            provider_id: provider_id.to_owned(),
            fiscal_period_end,
            reason: reason.to_owned(),
            reference: components
                .get(1)
                .filter(|reference| !reference.is_empty())
                .map(|reference| (*reference).to_owned()),
            amount_cents: plb.amount(element + 1)?,
        });
    }
    Ok(adjustments)
}
