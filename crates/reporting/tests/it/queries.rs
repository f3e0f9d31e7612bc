//! The query layer against real rows: hand-computed figures for every measure, filters and
//! groupings; rollups and lines agree; best code per payer; outlier clinics; refused filters.

use claimledger_reporting::error::ReportError;
use claimledger_reporting::filter::{Dimension, ReportFilter, Source};
use claimledger_reporting::insights::{Metric, Thresholds};
use claimledger_reporting::reimbursement::{ReimbursementRow, ReportQuery};
use claimledger_reporting::reports::Reports;
use uuid::Uuid;

use crate::fixture::generate;
use crate::helpers::spawn_app;
use crate::known::{chain_with_outliers, day, known_chain};

fn query(from: chrono::NaiveDate, to: chrono::NaiveDate, group_by: &[Dimension]) -> ReportQuery {
    ReportQuery {
        filter: ReportFilter::new(from, to).expect("a valid range"),
        group_by: group_by.to_vec(),
        source: Source::Auto,
    }
}

fn row<'a>(rows: &'a [ReimbursementRow], code: &str, payer: &str) -> &'a ReimbursementRow {
    rows.iter()
        .find(|row| row.code.as_deref() == Some(code) && row.payer_name.as_deref() == Some(payer))
        .unwrap_or_else(|| panic!("no row {code} {payer} in {rows:#?}"))
}

#[tokio::test]
async fn reimbursement_by_code_and_payer_matches_the_hand_computed_figures() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let reports = Reports::new(app.env.db.clone());
    let report = reports
        .reimbursement(
            data.chain,
            &query(day(1, 1), day(2, 28), &[Dimension::Code, Dimension::Payer]),
        )
        .await?;
    assert_eq!(report.source, "rollups");
    assert_eq!(report.rows.len(), 4);

    let massage_p1 = row(&report.rows, "97124", "Medicare-like");
    assert_eq!(
        (
            massage_p1.billed_lines,
            massage_p1.billed_units,
            massage_p1.billed_cents
        ),
        (2, 3, 13_500)
    );
    assert_eq!(
        (massage_p1.adjudicated_lines, massage_p1.paid_cents),
        (1, 5_000)
    );
    // 5000 / 3 units = 1666.67, rounded to the cent.
    assert_eq!(massage_p1.paid_per_billed_unit_cents, Some(1_667));
    assert_eq!(massage_p1.denial_rate, Some(0.0));
    assert_eq!(massage_p1.average_days_to_payment, Some(30.0));

    let manual_p1 = row(&report.rows, "97140", "Medicare-like");
    assert_eq!((manual_p1.billed_units, manual_p1.paid_cents), (6, 18_000));
    assert_eq!(manual_p1.paid_per_billed_unit_cents, Some(3_000));
    assert_eq!(manual_p1.average_days_to_payment, Some(30.0));

    let manual_p2 = row(&report.rows, "97140", "Massage Only");
    assert_eq!(
        (manual_p2.adjudicated_lines, manual_p2.denied_lines),
        (2, 2)
    );
    assert_eq!(manual_p2.denial_rate, Some(1.0));
    assert_eq!(manual_p2.paid_per_billed_unit_cents, Some(0));
    assert_eq!(manual_p2.average_days_to_payment, None);

    let massage_p2 = row(&report.rows, "97124", "Massage Only");
    assert_eq!(massage_p2.paid_per_billed_unit_cents, Some(3_200));
    assert_eq!(massage_p2.allowed_cents, 9_600);
    app.stop().await
}

#[tokio::test]
async fn filters_by_region_clinic_payer_and_code_and_grouping_by_month() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let reports = Reports::new(app.env.db.clone());
    let total = |rows: &[ReimbursementRow]| rows.iter().map(|row| row.billed_cents).sum::<i64>();

    let mut oregon = query(day(1, 1), day(2, 28), &[Dimension::Clinic]);
    oregon.filter.region = Some("OR".to_owned());
    let report = reports.reimbursement(data.chain, &oregon).await?;
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].clinic_name.as_deref(), Some("Clinic 002"));
    assert_eq!(report.rows[0].region.as_deref(), Some("OR"));
    assert_eq!(total(&report.rows), 18_000 + 9_000 + 4_500);

    let mut first_clinic = query(day(1, 1), day(2, 28), &[]);
    first_clinic.filter.clinics = Some(vec![data.clinics[0].id]);
    let report = reports.reimbursement(data.chain, &first_clinic).await?;
    assert_eq!(total(&report.rows), 9_000 + 9_000 + 4_500 + 13_500);

    let mut one_payer_code = query(day(1, 1), day(2, 28), &[]);
    one_payer_code.filter.payer = Some(data.payers[0].id);
    one_payer_code.filter.code = Some("97140".to_owned());
    let report = reports.reimbursement(data.chain, &one_payer_code).await?;
    assert_eq!(report.rows[0].billed_units, 6);

    let by_month = reports
        .reimbursement(
            data.chain,
            &query(day(1, 1), day(2, 28), &[Dimension::Month]),
        )
        .await?;
    let months: Vec<(Option<chrono::NaiveDate>, i64)> = by_month
        .rows
        .iter()
        .map(|row| (row.month, row.billed_cents))
        .collect();
    assert_eq!(
        months,
        vec![(Some(day(1, 1)), 22_500), (Some(day(2, 1)), 45_000)]
    );

    // A range that is not whole months is answered exactly from the lines.
    let partial = reports
        .reimbursement(data.chain, &query(day(1, 6), day(2, 10), &[]))
        .await?;
    assert_eq!(partial.source, "lines");
    assert_eq!(total(&partial.rows), 9_000 + 4_500 + 13_500 + 18_000);
    app.stop().await
}

#[tokio::test]
async fn rollups_and_lines_give_the_same_answer_for_every_grouping() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = generate(7, 12, day(1, 1), 90, 3);
    data.write(&app.env.db).await?;
    let reports = Reports::new(app.env.db.clone());
    let groupings: [&[Dimension]; 6] = [
        &[],
        &[Dimension::Code],
        &[Dimension::Code, Dimension::Payer],
        &[Dimension::Clinic, Dimension::Month],
        &[
            Dimension::Code,
            Dimension::Payer,
            Dimension::Clinic,
            Dimension::Month,
        ],
        &[Dimension::Payer, Dimension::Month],
    ];
    for group_by in groupings {
        let mut from_rollups = query(day(1, 1), day(3, 31), group_by);
        from_rollups.source = Source::Rollups;
        let mut from_lines = from_rollups.clone();
        from_lines.source = Source::Lines;
        let rollups = reports.reimbursement(data.chain, &from_rollups).await?;
        let lines = reports.reimbursement(data.chain, &from_lines).await?;
        assert!(!rollups.rows.is_empty());
        assert_eq!(rollups.rows, lines.rows, "grouped by {group_by:?}");
        let denials_rollups = reports.denial_reasons(data.chain, &from_rollups, 3).await?;
        let denials_lines = reports.denial_reasons(data.chain, &from_lines, 3).await?;
        assert_eq!(
            denials_rollups.rows, denials_lines.rows,
            "denials grouped by {group_by:?}"
        );
    }
    app.stop().await
}

#[tokio::test]
async fn top_denial_reasons_are_ranked_per_group() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let reports = Reports::new(app.env.db.clone());
    let report = reports
        .denial_reasons(
            data.chain,
            &query(day(1, 1), day(2, 28), &[Dimension::Payer]),
            5,
        )
        .await?;
    assert_eq!(report.rows.len(), 1, "{report:#?}");
    let top = &report.rows[0];
    assert_eq!(top.payer_name.as_deref(), Some("Massage Only"));
    assert_eq!(
        (top.group_code.as_str(), top.reason_code.as_str()),
        ("CO", "50")
    );
    assert_eq!((top.lines, top.amount_cents, top.rank), (2, 13_500, 1));
    let error = reports
        .denial_reasons(data.chain, &query(day(1, 1), day(2, 28), &[]), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ReportError::Invalid { field: "limit", .. }),
        "{error}"
    );
    app.stop().await
}

#[tokio::test]
async fn the_best_code_per_payer_comes_from_observed_payments_with_enough_evidence()
-> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let reports = Reports::new(app.env.db.clone());
    let filter = ReportFilter::new(day(1, 1), day(2, 28))?;
    let one_line = Thresholds {
        min_lines: 1,
        ..Thresholds::default()
    };
    let report = reports
        .best_code(data.chain, &filter, Source::Auto, one_line)
        .await?;
    let best = |payer: &str| {
        report
            .payers
            .iter()
            .find(|entry| entry.payer_name.as_deref() == Some(payer))
            .unwrap_or_else(|| panic!("{payer} in {report:#?}"))
    };
    assert_eq!(best("Medicare-like").best_code.as_deref(), Some("97140"));
    assert_eq!(
        best("Medicare-like").codes[0].paid_per_billed_unit_cents,
        Some(3_000)
    );
    assert_eq!(best("Medicare-like").codes[1].code, "97124");
    assert_eq!(best("Massage Only").best_code.as_deref(), Some("97124"));

    // With two adjudicated lines required, 97124 at Medicare-like (one line) is no candidate.
    let two_lines = Thresholds {
        min_lines: 2,
        ..Thresholds::default()
    };
    let report = reports
        .best_code(data.chain, &filter, Source::Auto, two_lines)
        .await?;
    let medicare = report
        .payers
        .iter()
        .find(|entry| entry.payer_name.as_deref() == Some("Medicare-like"))
        .expect("Medicare-like");
    let massage = medicare
        .codes
        .iter()
        .find(|code| code.code == "97124")
        .expect("97124");
    assert!(!massage.sufficient_evidence);
    assert_eq!(medicare.best_code.as_deref(), Some("97140"));
    app.stop().await
}

#[tokio::test]
async fn outlier_clinics_are_found_by_yield_and_denial_rate_and_no_others() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = chain_with_outliers();
    data.write(&app.env.db).await?;
    let reports = Reports::new(app.env.db.clone());
    let filter = ReportFilter::new(day(3, 1), day(3, 31))?;
    let report = reports
        .outliers(data.chain, &filter, Source::Auto, Thresholds::default())
        .await?;
    let mut found: Vec<(Uuid, Metric, Option<String>)> = report
        .outliers
        .iter()
        .map(|outlier| (outlier.clinic_id, outlier.metric, outlier.code.clone()))
        .collect();
    found.sort_by_key(|(clinic, metric, code)| (*clinic, *metric as u8, code.clone()));
    let mut expected = vec![
        (
            data.clinics[5].id,
            Metric::CodeYield,
            Some("97140".to_owned()),
        ),
        (
            data.clinics[4].id,
            Metric::CodeYield,
            Some("97124".to_owned()),
        ),
        (data.clinics[4].id, Metric::DenialRate, None),
    ];
    expected.sort_by_key(|(clinic, metric, code)| (*clinic, *metric as u8, code.clone()));
    assert_eq!(found, expected, "{report:#?}");
    let low_yield = report
        .outliers
        .iter()
        .find(|outlier| outlier.clinic_id == data.clinics[5].id)
        .expect("clinic 006");
    assert_eq!(low_yield.value, 1_500.0);
    assert_eq!(low_yield.peers, 5);
    assert!((low_yield.peer_mean - 3_000.0).abs() < 1e-9);
    assert!(low_yield.z < -30.0, "{low_yield:?}");

    // With more evidence required than any clinic has, nothing is concluded.
    let strict = Thresholds {
        min_lines: 1_000,
        ..Thresholds::default()
    };
    let none = reports
        .outliers(data.chain, &filter, Source::Auto, strict)
        .await?;
    assert!(none.outliers.is_empty());
    app.stop().await
}

#[tokio::test]
async fn a_bad_filter_is_refused_naming_the_field_before_anything_is_read() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let reports = Reports::new(app.env.db.clone());
    let mut bad = query(day(1, 1), day(2, 28), &[]);
    bad.filter.code = Some("97140; DROP TABLE x".to_owned());
    let error = reports
        .reimbursement(Uuid::new_v4(), &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ReportError::Invalid { field: "code", .. }),
        "{error}"
    );
    let mut reversed = query(day(1, 1), day(2, 28), &[]);
    reversed.filter.from = day(3, 1);
    let error = reports
        .reimbursement(Uuid::new_v4(), &reversed)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ReportError::Invalid { field: "from", .. }),
        "{error}"
    );
    app.stop().await
}
