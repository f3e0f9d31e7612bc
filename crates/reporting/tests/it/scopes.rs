//! Every report crossed with every role and clinic scope, and a corpus of bad query parameters:
//! a key reads only its chain and its clinics, and every refusal is a problem naming the parameter.

use claimledger_sessions_api::auth::Role;
use reqwest::StatusCode;

use crate::helpers::spawn_app;
use crate::known::known_chain;

const REPORTS: [&str; 4] = ["reimbursement", "denial-reasons", "best-code", "outliers"];
const RANGE: &str = "from=2026-01-01&to=2026-02-28";

// Its figures are printed for the record (`--nocapture`): they go into the closing notes.
#[allow(clippy::print_stdout)]
#[tokio::test]
async fn every_report_honours_every_role_and_clinic_scope() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let (own, other) = (data.clinics[0].id, data.clinics[1].id);
    let chain_key = app.key(data.chain, Role::Admin, None).await?;
    let mut checked = 0;
    for role in [Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst] {
        for clinics in [None, Some(own)] {
            let key = app
                .key(data.chain, role, clinics.as_ref().map(std::slice::from_ref))
                .await?;
            for report in REPORTS {
                let path = format!("/v1/reports/{report}?{RANGE}");
                let reply = app.get(&path, Some(&key), None).await;
                checked += 1;
                if role == Role::FrontDesk {
                    reply.assert_problem(StatusCode::FORBIDDEN, "role");
                    continue;
                }
                if clinics.is_some() && report == "outliers" {
                    reply.assert_problem(StatusCode::FORBIDDEN, "clinic_id");
                    continue;
                }
                assert_eq!(reply.status, StatusCode::OK, "{role:?} {report}: {reply:?}");
                if clinics.is_some() {
                    // A clinic-limited key answers exactly what a chain key answers for its clinic.
                    let limited = app
                        .get(&format!("{path}&clinic_id={own}"), Some(&chain_key), None)
                        .await;
                    assert_eq!(reply.json(), limited.json(), "{role:?} {report}");
                    let beyond = app
                        .get(&format!("{path}&clinic_id={other}"), Some(&key), None)
                        .await;
                    beyond.assert_problem(StatusCode::FORBIDDEN, "clinic_id");
                    checked += 2;
                }
            }
        }
    }
    println!("report scopes: {checked} requests over every role and clinic scope");
    app.stop().await
}

// Its figures are printed for the record (`--nocapture`): they go into the closing notes.
#[allow(clippy::print_stdout)]
#[tokio::test]
async fn every_bad_query_parameter_is_refused_naming_it() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let data = known_chain();
    data.write(&app.env.db).await?;
    let key = app.key(data.chain, Role::Analyst, None).await?;
    let common = [
        ("from=", "from"),
        ("to=", "to"),
        ("payer_id=", "payer_id"),
        ("clinic_id=", "clinic_id"),
        ("from=2026-02-30", "from"),
        ("from=0001-01-01x", "from"),
        ("to=yesterday", "to"),
        ("from=2026-03-01&to=2026-01-31", "from"),
        ("payer_id=not-a-uuid", "payer_id"),
        ("clinic_id=%00", "clinic_id"),
        ("region=%1B%5B31m", "region"),
        ("region=W", "region"),
        ("code=9712", "code"),
        ("code=%00", "code"),
        ("format=xml", "format"),
        ("format=", "format"),
        ("source=", "source"),
        ("source=cache", "source"),
        ("colour=red", "colour"),
        ("from=2026-01-01&from=2026-01-02", "from"),
    ];
    let mut cases = Vec::new();
    for report in REPORTS {
        for (query, field) in common {
            cases.push((format!("/v1/reports/{report}?{query}"), field));
        }
    }
    for (query, field) in [
        ("reimbursement?group_by=therapist", "group_by"),
        ("reimbursement?group_by=", "group_by"),
        ("denial-reasons?limit=0", "limit"),
        ("denial-reasons?limit=-1", "limit"),
        ("denial-reasons?limit=99999999999999999999", "limit"),
        ("best-code?min_lines=0", "min_lines"),
        ("best-code?min_lines=x", "min_lines"),
        ("outliers?z_threshold=-1", "z_threshold"),
        ("outliers?z_threshold=NaN", "z_threshold"),
        ("outliers?z_threshold=inf", "z_threshold"),
    ] {
        cases.push((format!("/v1/reports/{query}"), field));
    }
    let mut failures = Vec::new();
    for (path, field) in &cases {
        let reply = app.get(path, Some(&key), None).await;
        let named = reply.status == StatusCode::BAD_REQUEST
            && reply.content_type() == "application/problem+json"
            && reply.json()["field"] == *field;
        if !named {
            failures.push(format!("{path}: {} {}", reply.status, reply.text));
        }
    }
    println!(
        "report bad-query corpus: {} cases, {} answered 400 problem+json naming the parameter",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await
}
