//! Graceful shutdown: cancelling the token stops the server within a bound, and it then stops
//! accepting connections.

use reqwest::StatusCode;

use crate::helpers::{morning, spawn_app};

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
