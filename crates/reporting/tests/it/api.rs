//! The HTTP API: keys and roles, JSON and CSV answers equal to the query layer's, problem+json
//! naming the bad query parameter, and tenancy (another chain's key, a clinic-scoped key).

use claimledger_reporting::filter::{Dimension, ReportFilter, Source};
use claimledger_reporting::reimbursement::ReportQuery;
use claimledger_reporting::reports::Reports;
use claimledger_sessions_api::auth::Role;
use reqwest::StatusCode;

use crate::fixture::ChainData;
use crate::helpers::spawn_app;
use crate::known::{day, known_chain};

const JAN_FEB: &str = "from=2026-01-01&to=2026-02-28";

#[tokio::test]
async fn reports_need_a_key_with_a_reading_role() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let path = format!("/v1/reports/reimbursement?{JAN_FEB}");
    let reply = app.get(&path, None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.content_type(), "application/problem+json");
    let reply = app.get(&path, Some("clk_0000"), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let front_desk = app.key(data.chain, Role::FrontDesk, None).await?;
    app.get(&path, Some(&front_desk), None)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "role");
    for role in [Role::Analyst, Role::Billing, Role::Admin] {
        let key = app.key(data.chain, role, None).await?;
        assert_eq!(
            app.get(&path, Some(&key), None).await.status,
            StatusCode::OK,
            "{role:?}"
        );
    }
    app.stop().await
}

#[tokio::test]
async fn json_and_csv_answers_carry_the_query_layers_figures() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let key = app.key(data.chain, Role::Analyst, None).await?;
    let path = format!("/v1/reports/reimbursement?{JAN_FEB}&group_by=payer,code");
    let reply = app.get(&path, Some(&key), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.content_type(), "application/json");
    let expected = Reports::new(app.env.db.clone())
        .reimbursement(
            data.chain,
            &ReportQuery {
                filter: ReportFilter::new(day(1, 1), day(2, 28))?,
                group_by: vec![Dimension::Code, Dimension::Payer],
                source: Source::Auto,
            },
        )
        .await?;
    assert_eq!(reply.json(), serde_json::to_value(&expected)?);
    assert_eq!(
        reply.json()["group_by"],
        serde_json::json!(["code", "payer"])
    );

    let csv = app
        .get(&format!("{path}&format=csv"), Some(&key), None)
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.content_type(), "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 1 + 4);
    assert!(
        lines[0].starts_with("code,payer_id,payer,billed_lines,billed_units,billed_cents,"),
        "{}",
        lines[0]
    );
    let manual_medicare = lines
        .iter()
        .find(|line| line.starts_with("97140,") && line.contains(",Medicare-like,"))
        .expect("97140 at Medicare-like");
    // billed lines, units, cents; allowed; paid; patient responsibility; yield per unit.
    assert!(
        manual_medicare.contains(",2,6,27000,18000,18000,0,3000,"),
        "{manual_medicare}"
    );

    let accepted = app.get(&path, Some(&key), Some("text/csv")).await;
    assert_eq!(accepted.content_type(), "text/csv; charset=utf-8");
    assert_eq!(accepted.text, csv.text);

    for report in ["denial-reasons", "best-code", "outliers"] {
        let reply = app
            .get(
                &format!("/v1/reports/{report}?{JAN_FEB}&format=csv"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{report}: {reply:?}");
        let json = app
            .get(&format!("/v1/reports/{report}?{JAN_FEB}"), Some(&key), None)
            .await;
        assert_eq!(json.status, StatusCode::OK, "{report}: {json:?}");
    }
    let best = app
        .get(
            &format!("/v1/reports/best-code?{JAN_FEB}&min_lines=1"),
            Some(&key),
            None,
        )
        .await
        .json();
    let medicare = best["payers"]
        .as_array()
        .and_then(|payers| {
            payers
                .iter()
                .find(|payer| payer["payer_name"] == "Medicare-like")
        })
        .expect("Medicare-like");
    assert_eq!(medicare["best_code"], "97140");
    app.stop().await
}

#[tokio::test]
async fn a_bad_query_parameter_answers_400_naming_it() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let key = app.key(data.chain, Role::Analyst, None).await?;
    let cases = [
        ("reimbursement?from=2026-13-01", "from"),
        ("reimbursement?from=2026-03-01&to=2026-01-31", "from"),
        ("reimbursement?group_by=code,therapist", "group_by"),
        ("reimbursement?colour=red", "colour"),
        ("reimbursement?code=97140&code=97124", "code"),
        ("reimbursement?code=massage", "code"),
        ("reimbursement?region=washington", "region"),
        ("reimbursement?clinic_id=not-a-uuid", "clinic_id"),
        ("reimbursement?format=xml", "format"),
        ("reimbursement?source=cache", "source"),
        ("denial-reasons?limit=0", "limit"),
        ("denial-reasons?limit=many", "limit"),
        ("best-code?min_lines=0", "min_lines"),
        ("outliers?z_threshold=-1", "z_threshold"),
        ("best-code?group_by=code", "group_by"),
    ];
    for (path, field) in cases {
        app.get(&format!("/v1/reports/{path}"), Some(&key), None)
            .await
            .assert_problem(StatusCode::BAD_REQUEST, field);
    }
    app.stop().await
}

#[tokio::test]
async fn a_key_sees_its_own_chain_and_a_clinic_scoped_key_its_own_clinics() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let mut other = ChainData::new(1, &["WA"], &["Medicare-like"]);
    let (clinic, payer) = (other.clinics[0].clone(), other.payers[0].clone());
    other.lines.push(crate::fixture::Line::billed(
        &clinic,
        &payer,
        day(1, 9),
        "97140",
        1,
        777,
    ));
    other.write(&app.env.db).await?;

    let billed = |reply: &crate::helpers::Reply| reply.json()["rows"][0]["billed_cents"].clone();
    let path = format!("/v1/reports/reimbursement?{JAN_FEB}");
    let own = app.key(data.chain, Role::Analyst, None).await?;
    let theirs = app.key(other.chain, Role::Analyst, None).await?;
    assert_eq!(billed(&app.get(&path, Some(&own), None).await), 67_500);
    assert_eq!(billed(&app.get(&path, Some(&theirs), None).await), 777);
    // Another chain's clinic id filters to nothing rather than revealing anything.
    let foreign = app
        .get(&format!("{path}&clinic_id={}", clinic.id), Some(&own), None)
        .await;
    assert_eq!(billed(&foreign), 0);

    let first_clinic = data.clinics[0].id;
    let scoped = app
        .key(data.chain, Role::Analyst, Some(&[first_clinic]))
        .await?;
    assert_eq!(billed(&app.get(&path, Some(&scoped), None).await), 36_000);
    app.get(
        &format!("{path}&clinic_id={}", data.clinics[1].id),
        Some(&scoped),
        None,
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN, "clinic_id");
    app.get(
        &format!("/v1/reports/outliers?{JAN_FEB}"),
        Some(&scoped),
        None,
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN, "clinic_id");
    app.stop().await
}
