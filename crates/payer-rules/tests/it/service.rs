//! The NATS service against the real server: answers over request/reply, discovery through
//! `$SRV.PING` / `$SRV.INFO` / `$SRV.STATS`, and typed error replies (headers plus an `ErrorReply`
//! body) for an unknown payer, an unknown code and a malformed body. Each test serves under its
//! own subject prefix.

use std::time::Duration;

use async_nats::service::{Info, PingResponse, Stats};
use bytes::Bytes;
use claimledger_payer_rules::proto;
use claimledger_payer_rules::service::{ERROR_CODE_HEADER, ERROR_HEADER, SERVICE_NAME};
use prost::Message;

use crate::helpers::RunningService;

fn decide_request(payer: &str, code: &str) -> proto::DecideRequest {
    proto::DecideRequest {
        payer: payer.to_owned(),
        date_of_service: "2026-01-01".to_owned(),
        code: code.to_owned(),
        units: 2,
        modifiers: vec!["GP".to_owned()],
        diagnoses: vec!["M54.50".to_owned()],
        context: Some(proto::VisitContext {
            referral_date: "2025-12-15".to_owned(),
            ..proto::VisitContext::default()
        }),
        ..proto::DecideRequest::default()
    }
}

#[tokio::test]
async fn decide_answers_with_the_rules_in_force() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    let reply = running
        .request(
            "decide",
            decide_request("medicare-like", "97140").encode_to_vec(),
        )
        .await?;
    assert!(
        reply.headers.is_none(),
        "a decision carries no error headers"
    );
    let decision = proto::DecideReply::decode(reply.payload)?
        .decision
        .expect("a decision");
    assert_eq!(
        decision.outcome,
        Some(proto::decision::Outcome::Accepted(proto::Accepted {}))
    );
    assert_eq!(decision.expected_allowed_cents, 2 * 2772);
    assert_eq!(decision.rules_version, 2);
    assert_eq!(decision.billed_code, "97140");
    running.stop().await
}

#[tokio::test]
async fn choose_code_and_visit_answer_over_nats() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    let choice = proto::ChooseCodeRequest {
        payer: "lakeshore-mutual".to_owned(),
        date_of_service: "2025-09-15".to_owned(),
        supported_codes: vec!["97124".to_owned(), "97140".to_owned()],
        units: 2,
    };
    let reply = running
        .request("choose_code", choice.encode_to_vec())
        .await?;
    let choice = proto::ChooseCodeReply::decode(reply.payload)?;
    assert_eq!(choice.code, "97140");
    assert_eq!(choice.expected_allowed_cents, 7700);
    assert_eq!(choice.reason, "highest allowed amount");

    let visit = proto::VisitRequest {
        payer: "medicare-like".to_owned(),
        date_of_service: "2026-03-02".to_owned(),
        lines: vec![proto::VisitLine {
            code: "97140".to_owned(),
            minutes: 38,
            modifiers: vec!["GP".to_owned()],
            ..proto::VisitLine::default()
        }],
        diagnoses: vec!["M54.50".to_owned()],
        context: Some(proto::VisitContext {
            referral_date: "2026-02-01".to_owned(),
            ..proto::VisitContext::default()
        }),
        rules_version: 1,
    };
    let reply = running.request("visit", visit.encode_to_vec()).await?;
    let visit = proto::VisitReply::decode(reply.payload)?;
    assert_eq!(
        visit.rules_version, 1,
        "the named version, not the one in force"
    );
    assert_eq!(visit.lines.len(), 1);
    assert_eq!(visit.lines[0].billed_units, 3, "38 minutes are 3 units");
    assert_eq!(visit.expected_allowed_cents, 3 * 2717);
    running.stop().await
}

/// Asserts a typed error reply and returns its body.
fn error_reply(message: &async_nats::Message, status: &str) -> anyhow::Result<proto::ErrorReply> {
    let headers = message
        .headers
        .as_ref()
        .expect("an error reply carries the service error headers");
    assert_eq!(
        headers.get(ERROR_CODE_HEADER).map(|value| value.as_str()),
        Some(status)
    );
    assert!(
        headers
            .get(ERROR_HEADER)
            .is_some_and(|value| !value.as_str().is_empty())
    );
    Ok(proto::ErrorReply::decode(message.payload.clone())?)
}

#[tokio::test]
async fn an_unknown_payer_gets_a_typed_error() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    let reply = running
        .request(
            "decide",
            decide_request("acme-health", "97140").encode_to_vec(),
        )
        .await?;
    let error = error_reply(&reply, "404")?;
    assert_eq!(error.code(), proto::ErrorCode::UnknownPayer);
    assert_eq!(error.field, "payer");
    assert!(error.message.contains("acme-health"), "{}", error.message);
    running.stop().await
}

#[tokio::test]
async fn an_unknown_code_gets_a_typed_error() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    let reply = running
        .request(
            "decide",
            decide_request("medicare-like", "97999").encode_to_vec(),
        )
        .await?;
    let error = error_reply(&reply, "404")?;
    assert_eq!(error.code(), proto::ErrorCode::UnknownCode);
    assert_eq!(error.field, "code");

    let mut request = decide_request("medicare-like", "97140");
    request.other_codes_on_visit = vec!["97124".to_owned(), "0000".to_owned()];
    let reply = running.request("decide", request.encode_to_vec()).await?;
    let error = error_reply(&reply, "404")?;
    assert_eq!(error.code(), proto::ErrorCode::UnknownCode);
    assert_eq!(error.field, "other_codes_on_visit[1]");
    running.stop().await
}

#[tokio::test]
async fn a_malformed_body_and_bad_fields_get_typed_errors() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    // A field tag of zero is invalid protobuf.
    let reply = running.request("decide", vec![0x00, 0x01]).await?;
    let error = error_reply(&reply, "400")?;
    assert_eq!(error.code(), proto::ErrorCode::MalformedRequest);
    assert_eq!(error.field, "");

    let reply = running.request("visit", vec![0xff, 0xff, 0xff]).await?;
    assert_eq!(
        error_reply(&reply, "400")?.code(),
        proto::ErrorCode::MalformedRequest
    );

    let mut request = decide_request("medicare-like", "97140");
    request.date_of_service = "01/02/2026".to_owned();
    let reply = running.request("decide", request.encode_to_vec()).await?;
    let error = error_reply(&reply, "400")?;
    assert_eq!(error.code(), proto::ErrorCode::InvalidField);
    assert_eq!(error.field, "date_of_service");

    let mut request = decide_request("medicare-like", "97140");
    request.date_of_service = "2024-06-01".to_owned();
    let reply = running.request("decide", request.encode_to_vec()).await?;
    let error = error_reply(&reply, "404")?;
    assert_eq!(error.code(), proto::ErrorCode::NoRulesInForce);
    running.stop().await
}

#[tokio::test]
async fn visit_errors_name_the_line_and_the_rules_version() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    let line = |code: &str| proto::VisitLine {
        code: code.to_owned(),
        units: 1,
        modifiers: vec!["GP".to_owned()],
        ..proto::VisitLine::default()
    };
    let mut visit = proto::VisitRequest {
        payer: "medicare-like".to_owned(),
        date_of_service: "2026-03-02".to_owned(),
        lines: vec![line("97140"), line("97999")],
        diagnoses: vec!["M54.50".to_owned()],
        ..proto::VisitRequest::default()
    };
    let reply = running.request("visit", visit.encode_to_vec()).await?;
    let error = error_reply(&reply, "404")?;
    assert_eq!(error.code(), proto::ErrorCode::UnknownCode);
    assert_eq!(error.field, "lines[1].code");

    visit.lines = vec![line("97140")];
    visit.rules_version = 9;
    let reply = running.request("visit", visit.encode_to_vec()).await?;
    let error = error_reply(&reply, "404")?;
    assert_eq!(error.code(), proto::ErrorCode::UnknownRulesVersion);
    assert_eq!(error.field, "rules_version");

    visit.rules_version = 0;
    visit.lines[0].units = 0;
    let reply = running.request("visit", visit.encode_to_vec()).await?;
    let error = error_reply(&reply, "400")?;
    assert_eq!(error.code(), proto::ErrorCode::InvalidField);
    assert_eq!(error.field, "lines[0].units");
    running.stop().await
}

#[tokio::test]
async fn discovery_finds_the_service_and_its_endpoints() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    // Several test services may run at once under the same name; pick ours by its prefix.
    let prefix = running.prefix.clone();
    let info: Info = running
        .discover("INFO", |info: &Info| {
            info.metadata.get("subject_prefix") == Some(&prefix)
        })
        .await?;
    assert_eq!(info.name, SERVICE_NAME);
    let mut subjects: Vec<String> = info
        .endpoints
        .iter()
        .map(|endpoint| endpoint.subject.clone())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            format!("{prefix}.choose_code"),
            format!("{prefix}.decide"),
            format!("{prefix}.visit"),
        ]
    );

    let ping: PingResponse = running
        .discover("PING", |ping: &PingResponse| ping.id == info.id)
        .await?;
    assert_eq!(ping.name, SERVICE_NAME);

    running
        .request(
            "decide",
            decide_request("medicare-like", "97140").encode_to_vec(),
        )
        .await?;
    let ours: Stats = running
        .discover("STATS", |stats: &Stats| stats.id == info.id)
        .await?;
    let decide = ours
        .endpoints
        .iter()
        .find(|endpoint| endpoint.subject == format!("{prefix}.decide"))
        .expect("the decide endpoint has stats");
    assert_eq!(decide.requests, 1);
    running.stop().await
}

#[tokio::test]
async fn requests_after_stop_find_no_responder_instead_of_hanging() -> anyhow::Result<()> {
    let running = RunningService::start().await?;
    let client = running.client.clone();
    let subject = format!("{}.decide", running.prefix);
    running.stop().await?;
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(
            subject,
            Bytes::from(decide_request("medicare-like", "97140").encode_to_vec()),
        ),
    )
    .await?;
    assert!(outcome.is_err(), "a stopped service must not answer");
    Ok(())
}
