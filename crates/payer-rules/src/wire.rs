//! The mapping between the protobuf contract ([`crate::proto`]) and the engine: decode a request
//! body, validate each field into the billing core's types (naming the field on failure), run the
//! engine, encode the reply. Pure and transport-free, so the NATS service is a thin loop around
//! these functions and they can be tested without a server.

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Icd10Code, Modifier};
use prost::Message;

use crate::engine::{
    Changes, ChoiceReason, Decision, EngineError, LineQuery, Outcome, Quantity, RejectionReason,
    RulesSelector, VisitContext, VisitLine, VisitQuery,
};
use crate::proto;
use crate::rulebook::RuleBook;

/// A request the service cannot answer: the typed error reply's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WireError {
    /// The error class.
    pub code: proto::ErrorCode,
    /// A sentence for people.
    pub message: String,
    /// The request field at fault; empty when the whole body is.
    pub field: String,
}

impl WireError {
    fn new(
        code: proto::ErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> WireError {
        WireError {
            code,
            message: message.into(),
            field: field.into(),
        }
    }

    /// The status for the `Nats-Service-Error-Code` header: 404 for something unknown, 400 for
    /// bad input.
    pub fn status(&self) -> usize {
        match self.code {
            proto::ErrorCode::UnknownPayer
            | proto::ErrorCode::UnknownCode
            | proto::ErrorCode::UnknownRulesVersion
            | proto::ErrorCode::NoRulesInForce => 404,
            proto::ErrorCode::Unspecified
            | proto::ErrorCode::MalformedRequest
            | proto::ErrorCode::InvalidField => 400,
        }
    }

    /// The error reply body.
    pub fn to_reply(&self) -> proto::ErrorReply {
        proto::ErrorReply {
            code: self.code.into(),
            message: self.message.clone(),
            field: self.field.clone(),
        }
    }
}

impl From<EngineError> for WireError {
    fn from(error: EngineError) -> WireError {
        let field = match &error {
            EngineError::UnknownPayer { .. } => "payer",
            EngineError::NoRulesInForce { .. } => "date_of_service",
            EngineError::UnknownRulesVersion { .. } => "rules_version",
            EngineError::Units(_) => "lines",
            EngineError::Amount(_) => "units",
        };
        let code = match &error {
            EngineError::UnknownPayer { .. } => proto::ErrorCode::UnknownPayer,
            EngineError::NoRulesInForce { .. } => proto::ErrorCode::NoRulesInForce,
            EngineError::UnknownRulesVersion { .. } => proto::ErrorCode::UnknownRulesVersion,
            EngineError::Units(_) | EngineError::Amount(_) => proto::ErrorCode::InvalidField,
        };
        WireError::new(code, field, error.to_string())
    }
}

fn decode<T: Message + Default>(body: &[u8], type_name: &str) -> Result<T, WireError> {
    T::decode(body).map_err(|error| {
        WireError::new(
            proto::ErrorCode::MalformedRequest,
            "",
            format!("the body is not a valid {type_name} protobuf message: {error}"),
        )
    })
}

fn date(field: &str, value: &str) -> Result<NaiveDate, WireError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        WireError::new(
            proto::ErrorCode::InvalidField,
            field,
            format!("{value:?} is not a calendar date (YYYY-MM-DD)"),
        )
    })
}

fn optional_date(field: &str, value: &str) -> Result<Option<NaiveDate>, WireError> {
    if value.is_empty() {
        Ok(None)
    } else {
        date(field, value).map(Some)
    }
}

fn code(field: &str, value: &str) -> Result<CptCode, WireError> {
    CptCode::parse(field, value)
        .map_err(|error| WireError::new(proto::ErrorCode::UnknownCode, field, error.to_string()))
}

fn codes(field: &str, values: &[String]) -> Result<Vec<CptCode>, WireError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| code(&format!("{field}[{index}]"), value))
        .collect()
}

fn modifiers(field: &str, values: &[String]) -> Result<Vec<Modifier>, WireError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            value.parse::<Modifier>().map_err(|error| {
                WireError::new(
                    proto::ErrorCode::InvalidField,
                    format!("{field}[{index}]"),
                    error.to_string(),
                )
            })
        })
        .collect()
}

fn diagnoses(field: &str, values: &[String]) -> Result<Vec<Icd10Code>, WireError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let name = format!("{field}[{index}]");
            Icd10Code::parse(&name, value).map_err(|error| {
                WireError::new(proto::ErrorCode::InvalidField, name, error.to_string())
            })
        })
        .collect()
}

fn context(field: &str, value: Option<&proto::VisitContext>) -> Result<VisitContext, WireError> {
    let Some(value) = value else {
        return Ok(VisitContext::default());
    };
    Ok(VisitContext {
        referral_date: optional_date(&format!("{field}.referral_date"), &value.referral_date)?,
        visit_number_in_year: (value.visit_number_in_year > 0)
            .then_some(value.visit_number_in_year),
        submission_date: optional_date(
            &format!("{field}.submission_date"),
            &value.submission_date,
        )?,
    })
}

fn payer(value: &str) -> Result<&str, WireError> {
    if value.is_empty() {
        Err(WireError::new(
            proto::ErrorCode::InvalidField,
            "payer",
            "the payer is empty",
        ))
    } else {
        Ok(value)
    }
}

fn rejection_reason(reason: RejectionReason) -> proto::RejectionReason {
    match reason {
        RejectionReason::CodeNotCovered { .. } => proto::RejectionReason::CodeNotCovered,
        RejectionReason::Bundled { .. } => proto::RejectionReason::Bundled,
        RejectionReason::NcciEdit { .. } => proto::RejectionReason::NcciEdit,
        RejectionReason::NcciModifierRequired { .. } => {
            proto::RejectionReason::NcciModifierRequired
        }
        RejectionReason::OneMassageOrManualCodePerVisit { .. } => {
            proto::RejectionReason::OneMassageOrManualCodePerVisit
        }
        RejectionReason::ReferralMissing => proto::RejectionReason::ReferralMissing,
        RejectionReason::ReferralExpired { .. } => proto::RejectionReason::ReferralExpired,
        RejectionReason::VisitCapReached { .. } => proto::RejectionReason::VisitCapReached,
        RejectionReason::TimelyFilingExpired { .. } => proto::RejectionReason::TimelyFilingExpired,
        RejectionReason::DiagnosisMissing => proto::RejectionReason::DiagnosisMissing,
        RejectionReason::NoBillableUnits => proto::RejectionReason::NoBillableUnits,
    }
}

/// The wire form of an engine decision.
pub fn decision_to_proto(decision: &Decision) -> proto::Decision {
    let outcome = match &decision.outcome {
        Outcome::Accepted => proto::decision::Outcome::Accepted(proto::Accepted {}),
        Outcome::Rejected(reason) => proto::decision::Outcome::Rejected(proto::Rejected {
            reason: rejection_reason(*reason).into(),
            detail: reason.to_string(),
        }),
        Outcome::AcceptedWithChanges(Changes {
            substitute_code,
            modifiers_to_add,
            units_capped_to,
        }) => proto::decision::Outcome::AcceptedWithChanges(proto::AcceptedWithChanges {
            substitute_code: substitute_code
                .map(|code| code.as_str().to_owned())
                .unwrap_or_default(),
            modifiers_to_add: modifiers_to_add
                .iter()
                .map(|modifier| modifier.as_str().to_owned())
                .collect(),
            units_capped_to: units_capped_to.unwrap_or(0),
        }),
    };
    proto::Decision {
        outcome: Some(outcome),
        expected_allowed_cents: decision.expected_allowed.get(),
        rules_version: decision.rules_version,
        billed_code: decision.billed_code.as_str().to_owned(),
        billed_units: decision.billed_units,
    }
}

/// `<prefix>.decide`: one line under the rules in force.
pub fn decide(book: &RuleBook, body: &[u8]) -> Result<proto::DecideReply, WireError> {
    let request: proto::DecideRequest = decode(body, "DecideRequest")?;
    let payer = payer(&request.payer)?;
    let code = code("code", &request.code)?;
    if request.units == 0 {
        return Err(WireError::new(
            proto::ErrorCode::InvalidField,
            "units",
            "units must be at least 1",
        ));
    }
    let modifiers = modifiers("modifiers", &request.modifiers)?;
    let diagnoses = diagnoses("diagnoses", &request.diagnoses)?;
    let other_codes = codes("other_codes_on_visit", &request.other_codes_on_visit)?;
    let alternatives = codes("supported_alternatives", &request.supported_alternatives)?;
    let query = LineQuery {
        date_of_service: date("date_of_service", &request.date_of_service)?,
        code,
        units: request.units,
        modifiers: &modifiers,
        diagnoses: &diagnoses,
        other_codes_on_visit: &other_codes,
        supported_alternatives: &alternatives,
        context: context("context", request.context.as_ref())?,
    };
    let decision = book.decide(payer, &query)?;
    Ok(proto::DecideReply {
        decision: Some(decision_to_proto(&decision)),
    })
}

/// `<prefix>.choose_code`: which supported code this payer should be billed.
pub fn choose_code(book: &RuleBook, body: &[u8]) -> Result<proto::ChooseCodeReply, WireError> {
    let request: proto::ChooseCodeRequest = decode(body, "ChooseCodeRequest")?;
    let payer = payer(&request.payer)?;
    let supported = codes("supported_codes", &request.supported_codes)?;
    if supported.is_empty() {
        return Err(WireError::new(
            proto::ErrorCode::InvalidField,
            "supported_codes",
            "at least one supported code is needed",
        ));
    }
    let date_of_service = date("date_of_service", &request.date_of_service)?;
    let choice = book.choose_code(payer, date_of_service, &supported, request.units.max(1))?;
    Ok(proto::ChooseCodeReply {
        code: choice
            .code
            .map(|code| code.as_str().to_owned())
            .unwrap_or_default(),
        expected_allowed_cents: choice.expected_allowed.get(),
        rules_version: choice.rules_version,
        reason: choice
            .reason
            .map(ChoiceReason::describe)
            .unwrap_or("no supported code is covered")
            .to_owned(),
    })
}

/// `<prefix>.visit`: a whole visit under the rules in force or a named version.
pub fn visit(book: &RuleBook, body: &[u8]) -> Result<proto::VisitReply, WireError> {
    let request: proto::VisitRequest = decode(body, "VisitRequest")?;
    let payer = payer(&request.payer)?;
    if request.lines.is_empty() {
        return Err(WireError::new(
            proto::ErrorCode::InvalidField,
            "lines",
            "a visit needs at least one line",
        ));
    }
    let mut lines: Vec<VisitLine> = Vec::with_capacity(request.lines.len());
    for (index, line) in request.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        let quantity = match (line.units, line.minutes) {
            (0, 0) => {
                return Err(WireError::new(
                    proto::ErrorCode::InvalidField,
                    field("units"),
                    "give units, or minutes to derive them from",
                ));
            }
            (0, minutes) => Quantity::Minutes(minutes),
            (units, _) => Quantity::Units(units),
        };
        lines.push(VisitLine {
            code: code(&field("code"), &line.code)?,
            quantity,
            modifiers: modifiers(&field("modifiers"), &line.modifiers)?,
            supported_alternatives: codes(
                &field("supported_alternatives"),
                &line.supported_alternatives,
            )?,
        });
    }
    let query = VisitQuery {
        date_of_service: date("date_of_service", &request.date_of_service)?,
        lines,
        diagnoses: diagnoses("diagnoses", &request.diagnoses)?,
        context: context("context", request.context.as_ref())?,
    };
    let selector = match request.rules_version {
        0 => RulesSelector::InForce,
        version => RulesSelector::Version(version),
    };
    let decision = book.evaluate_visit(payer, selector, &query)?;
    Ok(proto::VisitReply {
        lines: decision.lines.iter().map(decision_to_proto).collect(),
        expected_allowed_cents: decision.expected_allowed.get(),
        rules_version: decision.rules_version,
    })
}
