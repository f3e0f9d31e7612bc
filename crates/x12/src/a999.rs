//! The 999 (005010X231A1) implementation acknowledgment: per transaction set (AK2, by ST02)
//! accepted, accepted with errors or rejected (IK5), with the segment and element errors
//! (IK3, IK4), and the functional group's result (AK9).

use crate::error::{ParseError, ParseProblem};
use crate::tokenizer::{Expected, Segment, envelope, tokenize};

const EXPECTED: Expected = Expected {
    functional_id: "FA",
    transaction_id: "999",
    version: "005010X231A1",
};

/// One 999 transaction set: the acknowledgment of one functional group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgment999 {
    /// ISA13 of the 999 itself.
    pub interchange_control_number: String,
    /// AK101: the acknowledged group's functional id, e.g. `HC`.
    pub functional_id: String,
    /// AK102: the acknowledged group's GS06.
    pub group_control_number: String,
    /// AK103: the acknowledged group's version, e.g. `005010X222A1`.
    pub version: Option<String>,
    /// One per AK2.
    pub sets: Vec<SetResponse>,
    /// AK9.
    pub group: GroupResponse,
}

/// IK501: what became of one transaction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetStatus {
    /// `A`.
    Accepted,
    /// `E`: accepted, but errors were noted.
    AcceptedWithErrors,
    /// `R`, `M`, `W` or `X`: rejected.
    Rejected,
}

/// AK2 to IK5: the answer for one transaction set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetResponse {
    /// AK201, e.g. `837`.
    pub transaction_id: String,
    /// AK202: the set's ST02.
    pub control_number: String,
    /// IK501.
    pub status: SetStatus,
    /// IK501 as sent.
    pub status_code: String,
    /// IK502 to IK506: syntax error codes.
    pub error_codes: Vec<String>,
    /// IK3 loops.
    pub segment_errors: Vec<SegmentError>,
}

/// IK3 and its IK4s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentError {
    /// IK301: the segment id in error.
    pub segment_id: String,
    /// IK302: its position in the transaction set (ST is 1).
    pub position: usize,
    /// IK303: the loop id.
    pub loop_id: Option<String>,
    /// IK304: the segment syntax error code.
    pub code: Option<String>,
    /// IK4s.
    pub element_errors: Vec<ElementError>,
}

/// IK4: an element in error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementError {
    /// IK401-1: the element position.
    pub position: usize,
    /// IK401-2: the component position.
    pub component: Option<usize>,
    /// IK402: the data element reference number.
    pub reference: Option<String>,
    /// IK403: the element syntax error code.
    pub code: String,
    /// IK404: a copy of the bad value.
    pub bad_value: Option<String>,
}

/// AK901: the functional group's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    /// `A`.
    Accepted,
    /// `E`.
    AcceptedWithErrors,
    /// `P`: partially accepted, at least one set rejected.
    PartiallyAccepted,
    /// `R` (and `M`, `W`, `X`).
    Rejected,
}

/// AK9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResponse {
    /// AK901.
    pub status: GroupStatus,
    /// AK902.
    pub included: usize,
    /// AK903.
    pub received: usize,
    /// AK904.
    pub accepted: usize,
    /// AK905 to AK909.
    pub error_codes: Vec<String>,
}

/// Reads a 999 file (one acknowledgment per transaction set; most carry one).
pub fn parse_999(bytes: &[u8]) -> Result<Vec<Acknowledgment999>, ParseError> {
    let tokens = tokenize(bytes)?;
    let envelope = envelope(&tokens, EXPECTED)?;
    envelope
        .transactions
        .iter()
        .map(|set| read(set.segments, &envelope.interchange_control_number))
        .collect()
}

fn unexpected(segment: &Segment<'_>, expected: &'static str) -> ParseError {
    segment.error(ParseProblem::UnexpectedSegment { expected })
}

fn codes(segment: &Segment<'_>, from: usize, to: usize) -> Vec<String> {
    (from..=to)
        .filter_map(|n| segment.optional(n).map(str::to_owned))
        .collect()
}

fn read(segments: &[Segment<'_>], interchange: &str) -> Result<Acknowledgment999, ParseError> {
    let mut index = 1;
    let at = |index: usize| &segments[index.min(segments.len() - 1)];
    let ak1 = at(index);
    if ak1.id != "AK1" {
        return Err(unexpected(ak1, "AK1 after ST"));
    }
    index += 1;
    let mut sets = Vec::new();
    while at(index).id == "AK2" {
        let ak2 = at(index);
        index += 1;
        let mut segment_errors: Vec<SegmentError> = Vec::new();
        loop {
            let segment = at(index);
            match segment.id {
                "IK3" => {
                    segment_errors.push(SegmentError {
                        segment_id: segment.required_text(1, 3)?.to_owned(),
                        position: segment.number(2)?,
                        loop_id: segment.optional(3).map(str::to_owned),
                        code: segment.optional(4).map(str::to_owned),
                        element_errors: Vec::new(),
                    });
                }
                "CTX" => {}
                "IK4" => {
                    let Some(current) = segment_errors.last_mut() else {
                        return Err(unexpected(segment, "IK3 before IK4"));
                    };
                    let position = segment.components(1);
                    let parse = |text: &str, component: usize| {
                        let parsed = (!text.is_empty()
                            && text.len() <= 4
                            && text.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| text.parse::<usize>().ok())
                        .flatten();
                        parsed.ok_or_else(|| {
                            segment.error_at(
                                Some(1),
                                Some(component),
                                ParseProblem::InvalidNumber(text.to_owned()),
                            )
                        })
                    };
                    let element = parse(position.first().copied().unwrap_or_default(), 1)?;
                    let component = match position.get(1).filter(|c| !c.is_empty()) {
                        Some(text) => Some(parse(text, 2)?),
                        None => None,
                    };
                    current.element_errors.push(ElementError {
                        position: element,
                        component,
                        reference: segment.optional(2).map(str::to_owned),
                        code: segment.required_text(3, 3)?.to_owned(),
                        bad_value: segment.optional(4).map(str::to_owned),
                    });
                }
                _ => break,
            }
            index += 1;
        }
        let ik5 = at(index);
        if ik5.id != "IK5" {
            return Err(unexpected(ik5, "IK3, IK4, CTX or IK5"));
        }
        index += 1;
        let status_code = ik5.code(1, &["A", "E", "M", "R", "W", "X"], "A, E, M, R, W or X")?;
        let status = match status_code {
            "A" => SetStatus::Accepted,
            "E" => SetStatus::AcceptedWithErrors,
            _ => SetStatus::Rejected,
        };
        sets.push(SetResponse {
            transaction_id: ak2.required_text(1, 3)?.to_owned(),
            control_number: ak2.required_text(2, 9)?.to_owned(),
            status,
            status_code: status_code.to_owned(),
            error_codes: codes(ik5, 2, 6),
            segment_errors,
        });
    }
    let ak9 = at(index);
    if ak9.id != "AK9" {
        return Err(unexpected(ak9, "AK2 or AK9"));
    }
    let status = match ak9.code(
        1,
        &["A", "E", "M", "P", "R", "W", "X"],
        "A, E, M, P, R, W or X",
    )? {
        "A" => GroupStatus::Accepted,
        "E" => GroupStatus::AcceptedWithErrors,
        "P" => GroupStatus::PartiallyAccepted,
        _ => GroupStatus::Rejected,
    };
    let group = GroupResponse {
        status,
        included: ak9.number(2)?,
        received: ak9.number(3)?,
        accepted: ak9.number(4)?,
        error_codes: codes(ak9, 5, 9),
    };
    let after = at(index + 1);
    if after.id != "SE" {
        return Err(unexpected(after, "SE after AK9"));
    }
    if group.included < sets.len() {
        return Err(ak9.element_error(
            2,
            ParseProblem::CountMismatch {
                what: "transaction sets included",
                stated: group.included.to_string(),
                actual: sets.len(),
            },
        ));
    }
    Ok(Acknowledgment999 {
        interchange_control_number: interchange.to_owned(),
        functional_id: ak1.required_text(1, 2)?.to_owned(),
        group_control_number: ak1.required_text(2, 9)?.to_owned(),
        version: ak1.optional(3).map(str::to_owned),
        sets,
        group,
    })
}
