//! The crate's typed errors: [`BuildError`] when an 837P cannot be written and [`ParseError`]
//! when an 835 or a 999 is refused. Both name the segment and the element, so that whoever fixes
//! the data (a biller, a clearinghouse) can find it.

use std::fmt;

use thiserror::Error;

use crate::money::AmountError;

/// Where in an 837P a value was refused: segment, element (and component), loop, and which
/// transaction, claim or line it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The segment id, e.g. `NM1`.
    pub segment: &'static str,
    /// The element position, 1-based (`NM1-03` is 3); 0 for the segment as a whole.
    pub element: u8,
    /// The component position inside a composite element, 1-based.
    pub component: Option<u8>,
    /// The loop, e.g. `2010BA`, or `ISA`/`GS`/`ST` for the envelope.
    pub loop_id: &'static str,
    /// Which transaction set, claim and line, e.g. `ST02 0001, CLM01 PCN1, LX 2`.
    pub context: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.segment)?;
        if self.element > 0 {
            write!(f, "-{:02}", self.element)?;
        }
        if let Some(component) = self.component {
            write!(f, "-{component}")?;
        }
        write!(f, " of loop {}", self.loop_id)
    }
}

/// An 837P that cannot be written, naming where and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{location}: {problem}{}", context_suffix(&location.context))]
pub struct BuildError {
    /// Where.
    pub location: Location,
    /// Why.
    pub problem: BuildProblem,
}

fn context_suffix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" ({context})")
    }
}

/// Why a value cannot go into an 837P.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildProblem {
    /// The value holds one of the interchange's delimiters.
    #[error("contains the {0}")]
    ContainsDelimiter(&'static str),
    /// A byte outside printable ASCII (control characters, non-ASCII letters).
    #[error("contains a character that is not printable ASCII ({0:?})")]
    NotPrintableAscii(char),
    /// Leading or trailing spaces, which receivers trim or reject differently.
    #[error("has leading or trailing spaces")]
    SurroundingSpaces,
    /// A required value is empty.
    #[error("is empty")]
    Empty,
    /// Shorter than the implementation guide allows.
    #[error("is shorter than {min} characters")]
    TooShort {
        /// The minimum length.
        min: usize,
    },
    /// Longer than the implementation guide (or a clearinghouse edit) allows.
    #[error("is longer than {max} characters")]
    TooLong {
        /// The maximum length.
        max: usize,
    },
    /// Not only digits where only digits are allowed.
    #[error("must be digits only")]
    NotDigits,
    /// An NPI whose tenth digit fails the Luhn check with the 80840 prefix.
    #[error("{0:?} is not an NPI (10 digits, Luhn check digit with the 80840 prefix)")]
    InvalidNpi(String),
    /// Not a value of the element's code list.
    #[error("{value:?} is not one of {allowed}")]
    NotInCodeList {
        /// The refused value.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// A control number beyond the element's nine digits, or zero.
    #[error("control number {0} is not between 1 and 999999999")]
    ControlNumberOutOfRange(u32),
    /// A negative amount where the implementation guide allows none.
    #[error("amount {0} cents is negative")]
    NegativeAmount(i64),
    /// A claim whose lines charge nothing in total.
    #[error("the total charge is zero")]
    ZeroTotal,
    /// The sum of the line charges leaves the range of cents.
    #[error("the sum of the line charges is out of range")]
    TotalOverflow,
    /// Zero units on a line.
    #[error("units must be at least 1")]
    ZeroUnits,
    /// More entries than the implementation guide allows.
    #[error("{count} entries, at most {max} allowed")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// No entries where at least one is required.
    #[error("needs at least one entry")]
    NoEntries,
    /// A diagnosis pointer outside 1..=the number of diagnoses.
    #[error("diagnosis pointer {pointer} is outside 1..={diagnoses}")]
    PointerOutOfRange {
        /// The 1-based pointer.
        pointer: u8,
        /// How many diagnoses the claim has.
        diagnoses: usize,
    },
    /// The same diagnosis pointer twice on one line.
    #[error("diagnosis pointer {0} appears twice")]
    DuplicatePointer(u8),
    /// An unlisted procedure code without its description.
    #[error("procedure {0} is unlisted and needs a description (SV101-7)")]
    DescriptionRequired(String),
    /// A line item control number used by two lines of one claim.
    #[error("line item control number {0:?} is used by another line of the claim")]
    DuplicateLineControlNumber(String),
    /// A diagnosis that is not ICD-10-CM shaped once its dot is removed.
    #[error("{0:?} is not an ICD-10-CM code (3 to 7 letters and digits, starting with a letter)")]
    InvalidDiagnosis(String),
    /// The derived claim's lines name different rendering providers, which one 2310B cannot carry.
    #[error("lines name different rendering NPIs ({0} and {1})")]
    MixedRenderingProviders(String, String),
    /// The export context's lines do not match the derived claim's lines one to one.
    #[error("the export context has {context} lines, the claim has {claim}")]
    LineCountMismatch {
        /// Lines in the context.
        context: usize,
        /// Lines in the claim.
        claim: usize,
    },
    /// A date outside the years the element can carry.
    #[error("date {0} cannot be written as CCYYMMDD")]
    DateOutOfRange(String),
}

/// A refused 835 or 999: where (segment position, segment id, element) and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("segment {segment_number} ({segment_id}{}){}: {problem}", transaction_position(*transaction_segment), element_suffix(segment_id, *element, *component))]
pub struct ParseError {
    /// The segment's position in the file, 1-based (0 when the file has no segment at all).
    pub segment_number: usize,
    /// Its position inside its transaction set (ST is 1), as a 999's IK302 counts it.
    pub transaction_segment: Option<usize>,
    /// The segment id as read (`?` when it is not a plausible id).
    pub segment_id: String,
    /// The element position, 1-based.
    pub element: Option<u8>,
    /// The component position inside a composite element, 1-based.
    pub component: Option<u8>,
    /// Why.
    pub problem: ParseProblem,
}

fn transaction_position(position: Option<usize>) -> String {
    position.map_or_else(String::new, |position| {
        format!(", {position} in its transaction set")
    })
}

fn element_suffix(segment_id: &str, element: Option<u8>, component: Option<u8>) -> String {
    match (element, component) {
        (Some(element), Some(component)) => format!(", {segment_id}-{element:02}-{component}"),
        (Some(element), None) => format!(", {segment_id}-{element:02}"),
        _ => String::new(),
    }
}

/// Why an 835 or a 999 is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseProblem {
    /// The file does not start with a complete ISA segment.
    #[error("the file does not start with a 106-character ISA segment")]
    NotAnInterchange,
    /// The delimiters the ISA declares are unusable (alphanumeric, a space, or repeated).
    #[error("the ISA declares unusable delimiters: {0}")]
    InvalidDelimiters(&'static str),
    /// A byte that is not printable ASCII outside the declared delimiters.
    #[error("byte 0x{byte:02X} at offset {offset} is not printable ASCII")]
    NotPrintableAscii {
        /// The byte.
        byte: u8,
        /// Its offset in the file.
        offset: usize,
    },
    /// The file ends inside a segment or before the IEA.
    #[error("the file is truncated: {0}")]
    Truncated(&'static str),
    /// Bytes after the IEA.
    #[error("content follows the IEA")]
    TrailingContent,
    /// A segment id that is not 2 or 3 upper-case letters or digits.
    #[error("is not a segment id")]
    InvalidSegmentId,
    /// A segment where the implementation guide allows none of its kind.
    #[error("is not expected here (expected {expected})")]
    UnexpectedSegment {
        /// What may come here.
        expected: &'static str,
    },
    /// A required element is empty or absent.
    #[error("is required")]
    MissingElement,
    /// An element that is not expected to hold a value.
    #[error("{value:?} is not one of {allowed}")]
    InvalidCode {
        /// The value read.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// An amount the cents model cannot hold exactly.
    #[error("{value:?} {problem}")]
    InvalidAmount {
        /// The value read.
        value: String,
        /// Why.
        problem: AmountError,
    },
    /// A date that is not CCYYMMDD.
    #[error("{0:?} is not a CCYYMMDD date")]
    InvalidDate(String),
    /// A number (count, units, position) that does not parse.
    #[error("{0:?} is not a number")]
    InvalidNumber(String),
    /// A value longer than the element allows.
    #[error("{value:?} is longer than {max} characters")]
    TooLong {
        /// The value read.
        value: String,
        /// The maximum.
        max: usize,
    },
    /// An NPI that fails its check digit.
    #[error("{0:?} is not an NPI (10 digits, Luhn check digit with the 80840 prefix)")]
    InvalidNpi(String),
    /// A trailer's count that does not match what was read.
    #[error("states {stated} {what}, the file holds {actual}")]
    CountMismatch {
        /// What is counted.
        what: &'static str,
        /// The trailer's count.
        stated: String,
        /// The count read.
        actual: usize,
    },
    /// A trailer's control number that does not match its header's.
    #[error("control number {trailer:?} does not match the header's {header:?}")]
    ControlNumberMismatch {
        /// The header's.
        header: String,
        /// The trailer's.
        trailer: String,
    },
    /// The wrong transaction set, version or functional group for this reader.
    #[error("{found:?} is not {expected}")]
    WrongTransaction {
        /// What was read.
        found: String,
        /// What this reader takes.
        expected: &'static str,
    },
    /// `SVC02 − Σ CAS ≠ SVC03`.
    #[error(
        "line does not balance: charge {charge} − adjustments {adjustments} ≠ paid {paid} (cents)"
    )]
    LineImbalance {
        /// SVC02.
        charge: i64,
        /// Σ line CAS.
        adjustments: i64,
        /// SVC03.
        paid: i64,
    },
    /// `CLP03 − Σ CAS (claim and lines) ≠ CLP04`.
    #[error(
        "claim does not balance: charge {charge} − adjustments {adjustments} ≠ paid {paid} (cents)"
    )]
    ClaimImbalance {
        /// CLP03.
        charge: i64,
        /// Σ claim and line CAS.
        adjustments: i64,
        /// CLP04.
        paid: i64,
    },
    /// `Σ CLP04 − Σ PLB ≠ BPR02`.
    #[error(
        "payment does not balance: claims paid {claims_paid} − provider adjustments {provider_adjustments} ≠ BPR02 {payment} (cents)"
    )]
    PaymentImbalance {
        /// Σ CLP04.
        claims_paid: i64,
        /// Σ PLB amounts.
        provider_adjustments: i64,
        /// BPR02.
        payment: i64,
    },
    /// A sum of amounts leaves the range of cents.
    #[error("a sum of amounts is out of range")]
    AmountOverflow,
    /// BPR02 below zero.
    #[error("the payment amount is negative")]
    NegativePayment,
}
