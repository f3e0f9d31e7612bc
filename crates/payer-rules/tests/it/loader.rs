//! The loader refuses bad rules with an error naming the file, the line and the field, and
//! yields nothing at all when any file is bad.

use std::path::PathBuf;

use claimledger_payer_rules::{RuleFileError, RuleSources, SourceFile};

use crate::helpers::rules_dir;

/// A valid two-version payer; each test breaks one thing in it.
const VALID: &str = r#"payer = "test-payer"
name = "Test payer"

[[versions]]
version = 1
effective_from = 2025-01-01
unit_method = "ama_per_code"
accepted_codes = ["97124", "97140"]
distinct_procedure_modifiers = "59"
enforce_ncci_edits = false
one_massage_or_manual_code_per_visit = true
timely_filing_days = 90

[versions.fee_schedule]
"97124" = 3000
"97140" = 3500

[[versions]]
version = 2
effective_from = 2026-01-01
unit_method = "ama_per_code"
accepted_codes = ["97124", "97140"]
distinct_procedure_modifiers = "59"
enforce_ncci_edits = false
one_massage_or_manual_code_per_visit = true
timely_filing_days = 90

[versions.fee_schedule]
"97124" = 3100
"97140" = 3600
"#;

fn sources_with(payer_text: &str) -> RuleSources {
    let mut sources = match RuleSources::read_dir(&rules_dir()) {
        Ok(sources) => sources,
        Err(error) => panic!("the shipped rules must be readable: {error}"),
    };
    sources.payer_files = vec![SourceFile::new("rules/test-payer.toml", payer_text)];
    sources
}

/// Compiles `payer_text` (with the shipped reference tables) and returns its single error.
fn single_error(payer_text: &str) -> RuleFileError {
    match sources_with(payer_text).compile() {
        Ok(_) => panic!("the rules should have been refused"),
        Err(invalid) => {
            assert_eq!(invalid.errors.len(), 1, "{invalid}");
            invalid.errors[0].clone()
        }
    }
}

fn assert_located(error: &RuleFileError, line: usize, field: &str, reason_part: &str) {
    assert_eq!(
        error.file,
        PathBuf::from("rules/test-payer.toml"),
        "{error}"
    );
    assert_eq!(error.line, line, "{error}");
    assert_eq!(error.field, field, "{error}");
    assert!(
        error.reason.contains(reason_part),
        "{error} should mention {reason_part:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("rules/test-payer.toml:{line}: {field}: ")),
        "{error}"
    );
}

#[test]
fn the_valid_baseline_and_the_shipped_directory_load() -> anyhow::Result<()> {
    let book = sources_with(VALID).compile()?;
    assert_eq!(book.payer_ids(), ["test-payer"]);
    let payer = book.payer("test-payer").expect("loaded");
    assert_eq!(payer.versions.len(), 2);
    assert_ne!(
        payer.versions[0].content_sha256, payer.versions[1].content_sha256,
        "each version hashes its own content"
    );
    RuleSources::read_dir(&rules_dir())?.compile()?;
    Ok(())
}

#[test]
fn an_unknown_code_is_located() {
    let error = single_error(&VALID.replacen(
        r#"accepted_codes = ["97124", "97140"]"#,
        r#"accepted_codes = ["97124", "97140", "97999"]"#,
        1,
    ));
    assert_located(
        &error,
        8,
        "versions[0].accepted_codes[2]",
        "is not a procedure code",
    );
}

#[test]
fn unordered_effective_dates_are_located() {
    let error = single_error(&VALID.replacen(
        "effective_from = 2026-01-01",
        "effective_from = 2024-06-01",
        1,
    ));
    assert_located(
        &error,
        20,
        "versions[1].effective_from",
        "is not after the previous version's effective_from",
    );
}

#[test]
fn overlapping_effective_dates_are_located() {
    let error = single_error(&VALID.replacen(
        "effective_from = 2025-01-01\n",
        "effective_from = 2025-01-01\neffective_to = 2026-01-01\n",
        1,
    ));
    assert_located(
        &error,
        21,
        "versions[1].effective_from",
        "overlaps the previous version",
    );
}

#[test]
fn a_negative_fee_is_located() {
    let error = single_error(&VALID.replacen(r#""97140" = 3600"#, r#""97140" = -5"#, 1));
    assert_located(
        &error,
        30,
        r#"versions[1].fee_schedule."97140""#,
        "is negative",
    );
}

#[test]
fn an_unknown_key_is_located() {
    let error = single_error(&VALID.replacen(
        "timely_filing_days = 90\n",
        "timely_filing_days = 90\nmax_vists_per_year = 12\n",
        1,
    ));
    assert_located(
        &error,
        13,
        "versions[0].max_vists_per_year",
        "unknown field",
    );
}

#[test]
fn an_unknown_top_level_key_and_a_wrong_type_are_located() {
    let error = single_error(&VALID.replacen(
        "name = \"Test payer\"\n",
        "name = \"Test payer\"\nregion = \"CO\"\n",
        1,
    ));
    assert_located(&error, 3, "region", "unknown field");

    let error = single_error(&VALID.replacen(r#""97124" = 3100"#, r#""97124" = "31.00""#, 1));
    assert_located(
        &error,
        29,
        r#"versions[1].fee_schedule."97124""#,
        "invalid type",
    );
}

#[test]
fn a_missing_field_is_located_at_its_table() {
    let error = single_error(&VALID.replacen("timely_filing_days = 90\n", "", 1));
    assert_located(&error, 4, "versions[0].timely_filing_days", "missing field");
}

#[test]
fn version_numbers_must_count_up_in_file_order() {
    let error = single_error(&VALID.replacen("version = 2", "version = 3", 1));
    assert_located(&error, 19, "versions[1].version", "must be 2");
}

#[test]
fn fees_must_match_the_accepted_and_bundled_codes() {
    let error = single_error(&VALID.replacen("\"97140\" = 3500\n", "", 1));
    assert_located(
        &error,
        8,
        "versions[0].accepted_codes[1]",
        "fee_schedule has no amount",
    );

    let with_bundled = VALID.replacen(
        "accepted_codes = [\"97124\", \"97140\"]\n",
        "accepted_codes = [\"97124\", \"97140\"]\nbundled_codes = [\"97010\"]\n",
        1,
    );
    let error = single_error(&with_bundled.replacen(
        "\"97140\" = 3500\n",
        "\"97140\" = 3500\n\"97010\" = 900\n",
        1,
    ));
    assert_located(
        &error,
        18,
        r#"versions[0].fee_schedule."97010""#,
        "must be 0",
    );
}

#[test]
fn the_payer_must_match_its_file_name() {
    let error =
        single_error(&VALID.replacen("payer = \"test-payer\"", "payer = \"other-payer\"", 1));
    assert_located(&error, 1, "payer", "must match the file name");
}

#[test]
fn every_problem_in_every_file_is_reported_and_nothing_loads() {
    let mut sources = sources_with(&VALID.replacen(r#""97140" = 3600"#, r#""97140" = -5"#, 1));
    sources.mue = SourceFile::new(
        "rules/reference/mue.toml",
        "[[limits]]\ncode = \"97110\"\nmax_units = 0\neffective = 2020-01-01\nconfidence = \"secondary\"\n",
    );
    sources.ptp = SourceFile::new(
        "rules/reference/ncci-ptp.toml",
        "[[edits]]\ncolumn1 = \"97140\"\ncolumn2 = \"97124\"\nmodifier_indicator = 2\neffective = 2020-01-01\nconfidence = \"secondary\"\n",
    );
    let invalid = match sources.compile() {
        Ok(_) => panic!("three bad files must not load"),
        Err(invalid) => invalid,
    };
    let located: Vec<String> = invalid
        .errors
        .iter()
        .map(|error| format!("{}:{}: {}", error.file.display(), error.line, error.field))
        .collect();
    assert_eq!(
        located,
        [
            "rules/reference/ncci-ptp.toml:4: edits[0].modifier_indicator",
            "rules/reference/mue.toml:3: limits[0].max_units",
            r#"rules/test-payer.toml:30: versions[1].fee_schedule."97140""#,
        ]
    );
}

#[test]
fn overlapping_reference_rows_are_refused() {
    let mut sources = sources_with(VALID);
    sources.always_therapy = SourceFile::new(
        "rules/reference/always-therapy.toml",
        "[[codes]]\ncode = \"97140\"\neffective = 2020-01-01\nconfidence = \"secondary\"\n\n[[codes]]\ncode = \"97140\"\neffective = 2021-01-01\ndeleted = 2022-01-01\nconfidence = \"secondary\"\n",
    );
    let invalid = match sources.compile() {
        Ok(_) => panic!("overlapping rows must not load"),
        Err(invalid) => invalid,
    };
    assert_eq!(invalid.errors.len(), 1);
    assert_eq!(invalid.errors[0].line, 6);
    assert_eq!(invalid.errors[0].field, "codes[1]");
    assert!(invalid.errors[0].reason.contains("overlaps"));
}
