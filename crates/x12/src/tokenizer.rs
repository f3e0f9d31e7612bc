//! Reading X12: delimiters from the ISA's fixed positions, segments split and checked (printable
//! ASCII only, plausible ids), and the envelope verified (ISA/IEA, GS/GE, ST/SE counts and
//! control numbers) before any reader looks at a transaction set.

use chrono::NaiveDate;

use crate::error::{ParseError, ParseProblem};
use crate::money::parse_cents;
use crate::writer::Delimiters;

/// The ISA's length, up to and including its segment terminator.
const ISA_LENGTH: usize = 106;
/// Where the ISA has element separators (its fields are fixed-width).
const ISA_SEPARATORS: [usize; 16] = [
    3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103,
];

/// One segment as read: its id, its elements, and where it was.
#[derive(Debug, Clone)]
pub(crate) struct Segment<'a> {
    pub(crate) id: &'a str,
    elements: Vec<&'a str>,
    /// 1-based position in the file.
    pub(crate) number: usize,
    /// 1-based position in its transaction set (ST is 1).
    pub(crate) in_transaction: Option<usize>,
    component: char,
}

impl<'a> Segment<'a> {
    /// An error about this segment as a whole.
    pub(crate) fn error(&self, problem: ParseProblem) -> ParseError {
        self.error_at(None, None, problem)
    }

    /// An error about element `element` (1-based).
    pub(crate) fn element_error(&self, element: usize, problem: ParseProblem) -> ParseError {
        self.error_at(Some(element), None, problem)
    }

    pub(crate) fn error_at(
        &self,
        element: Option<usize>,
        component: Option<usize>,
        problem: ParseProblem,
    ) -> ParseError {
        let narrow = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
        ParseError {
            segment_number: self.number,
            transaction_segment: self.in_transaction,
            segment_id: self.id.to_owned(),
            element: element.map(narrow),
            component: component.map(narrow),
            problem,
        }
    }

    /// Element `n` (1-based), empty when absent.
    pub(crate) fn get(&self, n: usize) -> &'a str {
        self.elements.get(n - 1).copied().unwrap_or("")
    }

    /// Element `n`, which must be present.
    pub(crate) fn required(&self, n: usize) -> Result<&'a str, ParseError> {
        match self.get(n) {
            "" => Err(self.element_error(n, ParseProblem::MissingElement)),
            value => Ok(value),
        }
    }

    /// Element `n` if present.
    pub(crate) fn optional(&self, n: usize) -> Option<&'a str> {
        Some(self.get(n)).filter(|value| !value.is_empty())
    }

    /// Element `n`, at most `max` characters.
    pub(crate) fn required_text(&self, n: usize, max: usize) -> Result<&'a str, ParseError> {
        let value = self.required(n)?;
        if value.len() > max {
            let value = value.to_owned();
            return Err(self.element_error(n, ParseProblem::TooLong { value, max }));
        }
        Ok(value)
    }

    /// The components of element `n`.
    pub(crate) fn components(&self, n: usize) -> Vec<&'a str> {
        self.get(n).split(self.component).collect()
    }

    /// Element `n` as cents.
    pub(crate) fn amount(&self, n: usize) -> Result<i64, ParseError> {
        let value = self.required(n)?;
        parse_cents(value).map_err(|problem| {
            let value = value.to_owned();
            self.element_error(n, ParseProblem::InvalidAmount { value, problem })
        })
    }

    /// Element `n` as cents, if present.
    pub(crate) fn optional_amount(&self, n: usize) -> Result<Option<i64>, ParseError> {
        match self.optional(n) {
            Some(_) => self.amount(n).map(Some),
            None => Ok(None),
        }
    }

    /// Element `n` as a CCYYMMDD date.
    pub(crate) fn date(&self, n: usize) -> Result<NaiveDate, ParseError> {
        let value = self.required(n)?;
        let parsed = (value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| NaiveDate::parse_from_str(value, "%Y%m%d").ok())
            .flatten();
        parsed.ok_or_else(|| self.element_error(n, ParseProblem::InvalidDate(value.to_owned())))
    }

    /// Element `n` as a whole number.
    pub(crate) fn number(&self, n: usize) -> Result<usize, ParseError> {
        let value = self.required(n)?;
        let digits =
            !value.is_empty() && value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| value.parse::<usize>().ok())
            .flatten()
            .ok_or_else(|| self.element_error(n, ParseProblem::InvalidNumber(value.to_owned())))
    }

    /// Element `n`, which must be one of `allowed`.
    pub(crate) fn code(
        &self,
        n: usize,
        allowed: &[&'static str],
        description: &'static str,
    ) -> Result<&'a str, ParseError> {
        let value = self.required(n)?;
        if allowed.contains(&value) {
            Ok(value)
        } else {
            Err(self.element_error(
                n,
                ParseProblem::InvalidCode {
                    value: value.to_owned(),
                    allowed: description,
                },
            ))
        }
    }
}

/// A file's segments and the delimiters its ISA declares.
#[derive(Debug)]
pub(crate) struct Tokens<'a> {
    pub(crate) segments: Vec<Segment<'a>>,
}

fn file_error(number: usize, id: &str, problem: ParseProblem) -> ParseError {
    ParseError {
        segment_number: number,
        transaction_segment: None,
        segment_id: id.to_owned(),
        element: None,
        component: None,
        problem,
    }
}

/// Reads the delimiters from the ISA and splits the file into checked segments.
pub(crate) fn tokenize(bytes: &[u8]) -> Result<Tokens<'_>, ParseError> {
    if bytes.len() < ISA_LENGTH || !bytes.starts_with(b"ISA") {
        return Err(file_error(1, "ISA", ParseProblem::NotAnInterchange));
    }
    let element = bytes[3];
    if ISA_SEPARATORS
        .iter()
        .any(|&position| bytes[position] != element)
    {
        return Err(file_error(1, "ISA", ParseProblem::NotAnInterchange));
    }
    let delimiters = Delimiters::new(
        char::from(element),
        char::from(bytes[104]),
        char::from(bytes[82]),
        char::from(bytes[105]),
    )
    .map_err(|reason| file_error(1, "ISA", ParseProblem::InvalidDelimiters(reason)))?;
    let terminator = bytes[105];
    let mut segments = Vec::new();
    let mut start = 0_usize;
    let mut in_transaction: Option<usize> = None;
    while start < bytes.len() {
        // Line breaks between segments are common and carry nothing.
        while start < bytes.len()
            && matches!(bytes[start], b'\r' | b'\n')
            && bytes[start] != terminator
        {
            start += 1;
        }
        if start >= bytes.len() {
            break;
        }
        let number = segments.len() + 1;
        let Some(length) = bytes[start..].iter().position(|&b| b == terminator) else {
            return Err(file_error(
                number,
                "?",
                ParseProblem::Truncated("the last segment has no terminator"),
            ));
        };
        let raw = &bytes[start..start + length];
        if let Some(offset) = raw
            .iter()
            .position(|b| !(b.is_ascii_graphic() || *b == b' '))
        {
            return Err(file_error(
                number,
                &plausible_id(raw),
                ParseProblem::NotPrintableAscii {
                    byte: raw[offset],
                    offset: start + offset,
                },
            ));
        }
        // Only printable ASCII remains, which is valid UTF-8.
        let text = std::str::from_utf8(raw).unwrap_or_default();
        let mut parts = text.split(char::from(element));
        let id = parts.next().unwrap_or_default();
        if !is_segment_id(id) {
            return Err(file_error(
                number,
                &plausible_id(raw),
                ParseProblem::InvalidSegmentId,
            ));
        }
        in_transaction = match (id, in_transaction) {
            ("ST", _) => Some(1),
            (_, Some(position)) => Some(position + 1),
            (_, None) => None,
        };
        segments.push(Segment {
            id,
            elements: parts.collect(),
            number,
            in_transaction,
            component: delimiters.component(),
        });
        if id == "SE" {
            in_transaction = None;
        }
        start += length + 1;
    }
    Ok(Tokens { segments })
}

fn is_segment_id(id: &str) -> bool {
    (2..=3).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_uppercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The segment id to show in an error: the id when it looks like one, else `?`.
fn plausible_id(raw: &[u8]) -> String {
    let id: Vec<u8> = raw
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .copied()
        .collect();
    match std::str::from_utf8(&id) {
        Ok(id) if is_segment_id(id) => id.to_owned(),
        _ => "?".to_owned(),
    }
}

/// One transaction set's segments, ST to SE inclusive, with its envelope's control numbers.
#[derive(Debug)]
pub(crate) struct TransactionSet<'s, 'a> {
    pub(crate) segments: &'s [Segment<'a>],
}

/// What the envelope says about the interchange.
#[derive(Debug)]
pub(crate) struct Envelope<'s, 'a> {
    pub(crate) interchange_control_number: String,
    pub(crate) sender_id: String,
    pub(crate) receiver_id: String,
    pub(crate) group_control_number: String,
    pub(crate) transactions: Vec<TransactionSet<'s, 'a>>,
}

/// What a reader takes: GS01, ST01 and the implementation guide (GS08, ST03).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub(crate) functional_id: &'static str,
    pub(crate) transaction_id: &'static str,
    pub(crate) version: &'static str,
}

fn mismatch(
    segment: &Segment<'_>,
    element: usize,
    found: &str,
    expected: &'static str,
) -> ParseError {
    segment.element_error(
        element,
        ParseProblem::WrongTransaction {
            found: found.to_owned(),
            expected,
        },
    )
}

fn check_control(trailer: &Segment<'_>, element: usize, header: &str) -> Result<(), ParseError> {
    let value = trailer.required(element)?;
    if value == header {
        Ok(())
    } else {
        Err(trailer.element_error(
            element,
            ParseProblem::ControlNumberMismatch {
                header: header.to_owned(),
                trailer: value.to_owned(),
            },
        ))
    }
}

fn check_count(
    trailer: &Segment<'_>,
    element: usize,
    what: &'static str,
    actual: usize,
) -> Result<(), ParseError> {
    let stated = trailer.required(element)?;
    if trailer.number(element).ok() == Some(actual) {
        Ok(())
    } else {
        Err(trailer.element_error(
            element,
            ParseProblem::CountMismatch {
                what,
                stated: stated.to_owned(),
                actual,
            },
        ))
    }
}

/// Checks ISA/GS/ST/SE/GE/IEA and returns the transaction sets. One functional group per file,
/// as clearinghouses send them.
pub(crate) fn envelope<'s, 'a>(
    tokens: &'s Tokens<'a>,
    expected: Expected,
) -> Result<Envelope<'s, 'a>, ParseError> {
    let segments = tokens.segments.as_slice();
    let end_of_file = |problem: &'static str| {
        let number = segments.len() + 1;
        file_error(number, "?", ParseProblem::Truncated(problem))
    };
    let unexpected = |segment: &Segment<'_>, what: &'static str| {
        segment.error(ParseProblem::UnexpectedSegment { expected: what })
    };
    let isa = &segments[0];
    if isa.get(12) != "00501" {
        return Err(mismatch(isa, 12, isa.get(12), "00501 (version 5010)"));
    }
    let isa13 = isa.required(13)?;
    let gs = segments.get(1).ok_or_else(|| end_of_file("no GS"))?;
    if gs.id != "GS" {
        return Err(unexpected(gs, "GS"));
    }
    if gs.get(1) != expected.functional_id {
        return Err(mismatch(gs, 1, gs.get(1), expected.functional_id));
    }
    if gs.get(8) != expected.version {
        return Err(mismatch(gs, 8, gs.get(8), expected.version));
    }
    let gs06 = gs.required(6)?;
    let mut transactions = Vec::new();
    let mut index = 2;
    loop {
        let segment = segments.get(index).ok_or_else(|| end_of_file("no GE"))?;
        match segment.id {
            "ST" => {
                if segment.get(1) != expected.transaction_id {
                    return Err(mismatch(
                        segment,
                        1,
                        segment.get(1),
                        expected.transaction_id,
                    ));
                }
                if let Some(version) = segment.optional(3).filter(|v| *v != expected.version) {
                    return Err(mismatch(segment, 3, version, expected.version));
                }
                let st02 = segment.required(2)?;
                let end = segments[index + 1..]
                    .iter()
                    .position(|s| matches!(s.id, "SE" | "ST" | "GE" | "IEA" | "GS"))
                    .map(|offset| offset + 1)
                    .ok_or_else(|| end_of_file("no SE"))?;
                let se = &segments[index + end];
                if se.id != "SE" {
                    return Err(unexpected(se, "SE"));
                }
                check_count(se, 1, "segments", end + 1)?;
                check_control(se, 2, st02)?;
                transactions.push(TransactionSet {
                    segments: &segments[index..=index + end],
                });
                index += end + 1;
            }
            "GE" => {
                check_count(segment, 1, "transaction sets", transactions.len())?;
                check_control(segment, 2, gs06)?;
                index += 1;
                break;
            }
            _ => return Err(unexpected(segment, "ST or GE")),
        }
    }
    let iea = segments.get(index).ok_or_else(|| end_of_file("no IEA"))?;
    if iea.id != "IEA" {
        return Err(unexpected(
            iea,
            "IEA (one functional group per interchange)",
        ));
    }
    check_count(iea, 1, "functional groups", 1)?;
    check_control(iea, 2, isa13)?;
    if let Some(extra) = segments.get(index + 1) {
        return Err(extra.error(ParseProblem::TrailingContent));
    }
    if transactions.is_empty() {
        return Err(unexpected(&segments[2], "ST"));
    }
    Ok(Envelope {
        interchange_control_number: isa13.to_owned(),
        sender_id: isa.get(6).trim_end().to_owned(),
        receiver_id: isa.get(8).trim_end().to_owned(),
        group_control_number: gs06.to_owned(),
        transactions,
    })
}
