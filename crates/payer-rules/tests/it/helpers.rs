//! Shared test helpers: the shipped rules directory, dates, and line queries.

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Icd10Code, Modifier};
use claimledger_payer_rules::{LineQuery, RuleBook, VisitContext, load_dir};

/// `rules/` at the workspace root.
pub fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// The shipped rules, loaded once per test binary.
pub fn book() -> &'static RuleBook {
    static BOOK: OnceLock<RuleBook> = OnceLock::new();
    BOOK.get_or_init(|| match load_dir(&rules_dir()) {
        Ok(book) => book,
        Err(error) => panic!("the shipped rules must load: {error}"),
    })
}

pub fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("test dates are valid")
}

pub fn low_back_pain() -> Vec<Icd10Code> {
    vec![Icd10Code::parse("diagnoses[0]", "M54.50").expect("a valid ICD-10-CM code")]
}

/// An owned line query, so tests can adjust fields before borrowing it as a [`LineQuery`].
#[derive(Debug, Clone)]
pub struct Line {
    pub date_of_service: NaiveDate,
    pub code: CptCode,
    pub units: u32,
    pub modifiers: Vec<Modifier>,
    pub diagnoses: Vec<Icd10Code>,
    pub other_codes_on_visit: Vec<CptCode>,
    pub supported_alternatives: Vec<CptCode>,
    pub context: VisitContext,
}

impl Line {
    /// A line with a diagnosis and a referral issued on the date of service, so that only the
    /// rule under test can refuse it.
    pub fn new(date_of_service: NaiveDate, code: CptCode, units: u32) -> Line {
        Line {
            date_of_service,
            code,
            units,
            modifiers: Vec::new(),
            diagnoses: low_back_pain(),
            other_codes_on_visit: Vec::new(),
            supported_alternatives: Vec::new(),
            context: VisitContext {
                referral_date: Some(date_of_service),
                ..VisitContext::default()
            },
        }
    }

    pub fn query(&self) -> LineQuery<'_> {
        LineQuery {
            date_of_service: self.date_of_service,
            code: self.code,
            units: self.units,
            modifiers: &self.modifiers,
            diagnoses: &self.diagnoses,
            other_codes_on_visit: &self.other_codes_on_visit,
            supported_alternatives: &self.supported_alternatives,
            context: self.context,
        }
    }
}
