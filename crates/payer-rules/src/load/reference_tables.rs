//! The dated reference tables under `reference/`: NCCI procedure-to-procedure edits, medically
//! unlikely edits and the always-therapy list, each row checked and located like a payer file's.

use super::*;

pub(super) fn confidence(name: ConfidenceName) -> Confidence {
    match name {
        ConfidenceName::Verified => Confidence::Verified,
        ConfidenceName::Secondary => Confidence::Secondary,
        ConfidenceName::Unverified => Confidence::Unverified,
    }
}

pub(super) fn period(
    problems: &mut Problems<'_>,
    prefix: &str,
    effective: &Spanned<Datetime>,
    deleted: Option<&Spanned<Datetime>>,
) -> Option<EffectivePeriod> {
    let start = problems.date(&format!("{prefix}.effective"), effective)?;
    let end = match deleted {
        Some(value) => {
            let end = problems.date(&format!("{prefix}.deleted"), value)?;
            if end <= start {
                problems.push(
                    value.span(),
                    format!("{prefix}.deleted"),
                    format!("{end} is not after effective {start}"),
                );
                return None;
            }
            Some(end)
        }
        None => None,
    };
    Some(EffectivePeriod {
        effective: start,
        deleted: end,
    })
}

pub(super) fn overlaps(first: &EffectivePeriod, second: &EffectivePeriod) -> bool {
    let first_end = first.deleted.unwrap_or(NaiveDate::MAX);
    let second_end = second.deleted.unwrap_or(NaiveDate::MAX);
    first.effective < second_end && second.effective < first_end
}

pub(super) fn parse_ptp(file: &SourceFile, errors: &mut Vec<RuleFileError>) -> Vec<PtpEdit> {
    let Some(parsed) = parse_toml::<PtpFile>(file, errors) else {
        return Vec::new();
    };
    let mut problems = Problems {
        file,
        errors: &mut *errors,
    };
    let mut edits: Vec<PtpEdit> = Vec::new();
    for (index, row) in parsed.edits.iter().enumerate() {
        let prefix = format!("edits[{index}]");
        let row_span = row.span();
        let row = row.get_ref();
        let column1 = problems.code(&format!("{prefix}.column1"), &row.column1);
        let column2 = problems.code(&format!("{prefix}.column2"), &row.column2);
        let indicator = match *row.modifier_indicator.get_ref() {
            0 => Some(ModifierIndicator::NotAllowed),
            1 => Some(ModifierIndicator::Allowed),
            9 => Some(ModifierIndicator::NotApplicable),
            other => {
                problems.push(
                    row.modifier_indicator.span(),
                    format!("{prefix}.modifier_indicator"),
                    format!("{other} is not an NCCI modifier indicator (0, 1 or 9)"),
                );
                None
            }
        };
        let period = period(&mut problems, &prefix, &row.effective, row.deleted.as_ref());
        let (Some(column1), Some(column2), Some(indicator), Some(period)) =
            (column1, column2, indicator, period)
        else {
            continue;
        };
        if column1 == column2 {
            problems.push(
                row.column2.span(),
                format!("{prefix}.column2"),
                format!("{column2} is the same code as column1"),
            );
            continue;
        }
        if edits.iter().any(|edit| {
            edit.column1 == column1 && edit.column2 == column2 && overlaps(&edit.period, &period)
        }) {
            problems.push(
                row_span,
                prefix,
                format!("the pair {column1}/{column2} overlaps an earlier row for the same pair"),
            );
            continue;
        }
        edits.push(PtpEdit {
            column1,
            column2,
            indicator,
            period,
            confidence: confidence(row.confidence),
        });
    }
    edits
}

pub(super) fn parse_mue(file: &SourceFile, errors: &mut Vec<RuleFileError>) -> Vec<MueLimit> {
    let Some(parsed) = parse_toml::<MueFile>(file, errors) else {
        return Vec::new();
    };
    let mut problems = Problems {
        file,
        errors: &mut *errors,
    };
    let mut limits: Vec<MueLimit> = Vec::new();
    for (index, row) in parsed.limits.iter().enumerate() {
        let prefix = format!("limits[{index}]");
        let row_span = row.span();
        let row = row.get_ref();
        let code = problems.code(&format!("{prefix}.code"), &row.code);
        let max_units = problems.count(&format!("{prefix}.max_units"), &row.max_units, 1);
        let period = period(&mut problems, &prefix, &row.effective, row.deleted.as_ref());
        let (Some(code), Some(max_units), Some(period)) = (code, max_units, period) else {
            continue;
        };
        if limits
            .iter()
            .any(|limit| limit.code == code && overlaps(&limit.period, &period))
        {
            problems.push(
                row_span,
                prefix,
                format!("the MUE for {code} overlaps an earlier row for the same code"),
            );
            continue;
        }
        limits.push(MueLimit {
            code,
            max_units,
            period,
            confidence: confidence(row.confidence),
        });
    }
    limits
}

pub(super) fn parse_always_therapy(
    file: &SourceFile,
    errors: &mut Vec<RuleFileError>,
) -> Vec<AlwaysTherapyEntry> {
    let Some(parsed) = parse_toml::<AlwaysTherapyFile>(file, errors) else {
        return Vec::new();
    };
    let mut problems = Problems {
        file,
        errors: &mut *errors,
    };
    let mut entries: Vec<AlwaysTherapyEntry> = Vec::new();
    for (index, row) in parsed.codes.iter().enumerate() {
        let prefix = format!("codes[{index}]");
        let row_span = row.span();
        let row = row.get_ref();
        let code = problems.code(&format!("{prefix}.code"), &row.code);
        let period = period(&mut problems, &prefix, &row.effective, row.deleted.as_ref());
        let (Some(code), Some(period)) = (code, period) else {
            continue;
        };
        if entries
            .iter()
            .any(|entry| entry.code == code && overlaps(&entry.period, &period))
        {
            problems.push(
                row_span,
                prefix,
                format!("{code} overlaps an earlier row for the same code"),
            );
            continue;
        }
        entries.push(AlwaysTherapyEntry {
            code,
            period,
            confidence: confidence(row.confidence),
        });
    }
    entries
}
