//! Graceful shutdown and the request timeout: cancelling the token stops the server within a
//! bound, and a request slower than the timeout answers a 408 problem.

use reqwest::StatusCode;

use crate::helpers::{morning, spawn_app, spawn_app_with};

#[tokio::test]
async fn cancelling_the_shutdown_token_stops_the_server() {
    let mut app = spawn_app().await;
    let world = app.world().await;
    assert_eq!(
        app.schedule(&world, morning()).await.status,
        StatusCode::CREATED
    );
    assert!(app.stop().await, "the server did not stop within the bound");
    let after = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await;
    assert!(after.is_err(), "the server still answers after shutdown");
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_answers_a_408_problem() {
    let app = spawn_app_with(|settings| {
        settings.http.request_timeout = std::time::Duration::from_nanos(1)
    })
    .await;
    let timed_out = app
        .get(
            &format!("/v1/sessions/{}", uuid::Uuid::now_v7()),
            &app.admin_key,
        )
        .send()
        .await;
    assert_eq!(
        timed_out.status,
        StatusCode::REQUEST_TIMEOUT,
        "{timed_out:?}"
    );
    assert_eq!(timed_out.content_type(), "application/problem+json");
    assert_eq!(timed_out.body["type"], "urn:claimledger:problem:timeout");
}
