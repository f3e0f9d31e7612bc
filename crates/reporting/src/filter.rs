//! What a report is about: the date range and the filters (clinic, region, payer, code), the
//! dimensions to group by, and where the figures come from (the monthly rollups or the lines).
//!
//! Every value is validated here, once, for the HTTP API and the command line alike; a refusal
//! names the parameter.

use chrono::{Datelike, Months, NaiveDate};
use uuid::Uuid;

use crate::error::ReportError;

/// The longest range a report may cover, so that one request cannot ask for a scan of decades.
pub const MAX_RANGE_DAYS: i64 = 366 * 5;

/// The chain-wide filters of a report. Dates are dates of service, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFilter {
    /// First date of service.
    pub from: NaiveDate,
    /// Last date of service.
    pub to: NaiveDate,
    /// Only these clinics (`None`: every clinic of the chain).
    pub clinics: Option<Vec<Uuid>>,
    /// Only clinics in this region (US state, two letters).
    pub region: Option<String>,
    /// Only this payer.
    pub payer: Option<Uuid>,
    /// Only this procedure code.
    pub code: Option<String>,
}

impl ReportFilter {
    /// A filter over `from..=to` with no other restriction.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<ReportFilter, ReportError> {
        let filter = ReportFilter {
            from,
            to,
            clinics: None,
            region: None,
            payer: None,
            code: None,
        };
        filter.validate()?;
        Ok(filter)
    }

    /// The last twelve whole months before `today`'s month, plus `today`'s month so far: the
    /// default range of the API and the command line.
    pub fn last_year(today: NaiveDate) -> ReportFilter {
        let month_start = first_of_month(today);
        let from = month_start
            .checked_sub_months(Months::new(11))
            .unwrap_or(month_start);
        ReportFilter {
            from,
            to: last_of_month(today),
            clinics: None,
            region: None,
            payer: None,
            code: None,
        }
    }

    /// Checks every value; the error names the first bad parameter.
    pub fn validate(&self) -> Result<(), ReportError> {
        if self.from > self.to {
            return Err(ReportError::invalid(
                "from",
                format!("{} is after to ({})", self.from, self.to),
            ));
        }
        if (self.to - self.from).num_days() > MAX_RANGE_DAYS {
            return Err(ReportError::invalid(
                "to",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            ));
        }
        if let Some(clinics) = &self.clinics
            && clinics.is_empty()
        {
            return Err(ReportError::invalid("clinic_id", "no clinic is allowed"));
        }
        if let Some(region) = &self.region {
            parse_region(region)?;
        }
        if let Some(code) = &self.code {
            parse_code(code)?;
        }
        Ok(())
    }

    /// Whether the range is whole calendar months, which the monthly rollups answer exactly.
    pub fn is_whole_months(&self) -> bool {
        self.from.day() == 1 && self.to == last_of_month(self.to)
    }
}

/// A dimension a report can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The procedure code.
    Code,
    /// The payer.
    Payer,
    /// The clinic.
    Clinic,
    /// The month of the date of service.
    Month,
}

impl Dimension {
    /// Every dimension, in the order columns are printed.
    pub const ALL: [Dimension; 4] = [
        Dimension::Code,
        Dimension::Payer,
        Dimension::Clinic,
        Dimension::Month,
    ];

    /// The name the API and the command line use.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Code => "code",
            Dimension::Payer => "payer",
            Dimension::Clinic => "clinic",
            Dimension::Month => "month",
        }
    }

    /// The column of the rollups (and of the line-level relation built to match them).
    pub(crate) fn column(self) -> &'static str {
        match self {
            Dimension::Code => "code",
            Dimension::Payer => "payer_id",
            Dimension::Clinic => "clinic_id",
            Dimension::Month => "month",
        }
    }

    /// Parses `code,payer,...` (empty: no grouping, one total row). Repeats and unknown names are
    /// refused; the result is in [`Dimension::ALL`] order.
    pub fn parse_list(text: &str) -> Result<Vec<Dimension>, ReportError> {
        let mut dimensions = Vec::new();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let dimension = Dimension::ALL
                .into_iter()
                .find(|dimension| dimension.as_str() == name)
                .ok_or_else(|| {
                    ReportError::invalid(
                        "group_by",
                        format!("{name:?} is not a dimension (code, payer, clinic, month)"),
                    )
                })?;
            if dimensions.contains(&dimension) {
                return Err(ReportError::invalid(
                    "group_by",
                    format!("{name:?} is named twice"),
                ));
            }
            dimensions.push(dimension);
        }
        dimensions.sort();
        Ok(dimensions)
    }
}

/// Where a report's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The rollups when the range is whole months, otherwise the lines.
    Auto,
    /// The monthly rollups the projector keeps (a partial month counts whole).
    Rollups,
    /// The claim lines, grouped at query time (exact for any range; slower).
    Lines,
}

impl Source {
    /// Parses `auto`, `rollups` or `lines`.
    pub fn parse(text: &str) -> Result<Source, ReportError> {
        match text {
            "auto" => Ok(Source::Auto),
            "rollups" => Ok(Source::Rollups),
            "lines" => Ok(Source::Lines),
            other => Err(ReportError::invalid(
                "source",
                format!("{other:?} is not a source (auto, rollups, lines)"),
            )),
        }
    }

    /// The source actually read for `filter`.
    pub fn resolve(self, filter: &ReportFilter) -> Source {
        match self {
            Source::Auto if filter.is_whole_months() => Source::Rollups,
            Source::Auto => Source::Lines,
            chosen => chosen,
        }
    }

    /// The name the API and the command line use.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Auto => "auto",
            Source::Rollups => "rollups",
            Source::Lines => "lines",
        }
    }
}

/// Parses a date `YYYY-MM-DD` for `field`.
pub fn parse_date(field: &'static str, text: &str) -> Result<NaiveDate, ReportError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ReportError::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// Parses a UUID for `field`.
pub fn parse_uuid(field: &'static str, text: &str) -> Result<Uuid, ReportError> {
    Uuid::parse_str(text)
        .map_err(|_| ReportError::invalid(field, format!("{text:?} is not a UUID")))
}

/// Checks a procedure code: five characters, digits and capital letters (CPT and HCPCS).
pub fn parse_code(text: &str) -> Result<String, ReportError> {
    let valid = text.len() == 5
        && text
            .chars()
            .all(|character| character.is_ascii_digit() || character.is_ascii_uppercase());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ReportError::invalid(
            "code",
            format!("{text:?} is not a procedure code (five digits or capital letters)"),
        ))
    }
}

/// Checks a region: a US state's two capital letters.
pub fn parse_region(text: &str) -> Result<String, ReportError> {
    if text.len() == 2 && text.chars().all(|character| character.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err(ReportError::invalid(
            "region",
            format!("{text:?} is not a state (two capital letters, e.g. WA)"),
        ))
    }
}

/// The first day of `date`'s month.
pub fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// The last day of `date`'s month.
pub fn last_of_month(date: NaiveDate) -> NaiveDate {
    first_of_month(date)
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date("from", text).unwrap()
    }

    #[test]
    fn given_whole_months_when_resolved_then_auto_reads_the_rollups() {
        let filter = ReportFilter::new(date("2026-01-01"), date("2026-02-28")).unwrap();
        assert_eq!(Source::Auto.resolve(&filter), Source::Rollups);
        let partial = ReportFilter::new(date("2026-01-01"), date("2026-02-27")).unwrap();
        assert_eq!(Source::Auto.resolve(&partial), Source::Lines);
        assert_eq!(Source::Rollups.resolve(&partial), Source::Rollups);
    }

    #[test]
    fn given_a_reversed_range_when_validated_then_from_is_named() {
        let error = ReportFilter::new(date("2026-03-01"), date("2026-02-01")).unwrap_err();
        assert!(
            matches!(error, ReportError::Invalid { field: "from", .. }),
            "{error}"
        );
    }

    #[test]
    fn given_dimension_lists_when_parsed_then_order_is_canonical_and_repeats_are_refused() {
        assert_eq!(
            Dimension::parse_list("month, code").unwrap(),
            vec![Dimension::Code, Dimension::Month]
        );
        assert!(Dimension::parse_list("").unwrap().is_empty());
        assert!(matches!(
            Dimension::parse_list("code,code"),
            Err(ReportError::Invalid {
                field: "group_by",
                ..
            })
        ));
        assert!(matches!(
            Dimension::parse_list("therapist"),
            Err(ReportError::Invalid {
                field: "group_by",
                ..
            })
        ));
    }

    #[test]
    fn given_codes_and_regions_when_parsed_then_only_well_formed_ones_pass() {
        assert!(parse_code("97140").is_ok());
        assert!(parse_code("G0283").is_ok());
        assert!(parse_code("9714").is_err());
        assert!(parse_code("97140'--").is_err());
        assert!(parse_region("WA").is_ok());
        assert!(parse_region("wa").is_err());
    }

    #[test]
    fn given_a_day_when_the_default_range_is_taken_then_it_spans_twelve_whole_months() {
        let filter = ReportFilter::last_year(date("2026-11-29"));
        assert_eq!(filter.from, date("2025-12-01"));
        assert_eq!(filter.to, date("2026-11-30"));
        assert!(filter.is_whole_months());
    }
}
