//! Malformed, oversized and mistyped bodies answer problem+json 400/413/415/422 and write nothing.

use reqwest::StatusCode;

use crate::helpers::{morning, spawn_app};

#[tokio::test]
async fn malformed_json_answers_400_naming_the_body() {
    let app = spawn_app().await;
    let world = app.world().await;
    let before = app.total_commits().await;
    let reply = app
        .post("/v1/sessions", &world.front_desk)
        .raw_json(b"{\"clinic_id\": ".to_vec())
        .send()
        .await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "body");
    assert_eq!(app.total_commits().await, before);
}

#[tokio::test]
async fn an_oversized_body_answers_413() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let reason = "x".repeat(70 * 1024);
    let body = format!("{{\"reason\": \"{reason}\"}}").into_bytes();
    let reply = app
        .post(&format!("/v1/sessions/{session}/cancel"), &world.front_desk)
        .raw_json(body)
        .send()
        .await;
    reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "body");
    assert_eq!(app.commits_of(world.clinic, session).await, 1);
}

#[tokio::test]
async fn a_non_json_content_type_answers_415() {
    let app = spawn_app().await;
    let world = app.world().await;
    let reply = app
        .post("/v1/sessions", &world.front_desk)
        .header("content-type", "text/plain")
        .send()
        .await;
    reply.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type");
}

#[tokio::test]
async fn malformed_headers_answer_400_naming_the_header() {
    let app = spawn_app().await;
    let world = app.world().await;
    let session = app.schedule(&world, morning()).await.id();
    let path = format!("/v1/sessions/{session}/check-in");
    app.post(&path, &world.front_desk)
        .header("if-match", "W/\"x\"")
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "If-Match");
    let long_key = "k".repeat(300);
    app.post(&path, &world.front_desk)
        .header("idempotency-key", &long_key)
        .send()
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "Idempotency-Key");
    assert_eq!(app.commits_of(world.clinic, session).await, 1);
}

#[tokio::test]
async fn an_unknown_path_answers_a_404_problem() {
    let app = spawn_app().await;
    let reply = app.get("/v1/nothing-here", &app.admin_key).send().await;
    reply.assert_problem(StatusCode::NOT_FOUND, "path");
}
