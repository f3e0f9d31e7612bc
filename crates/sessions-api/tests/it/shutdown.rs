//! Graceful shutdown and the request timeout: cancelling the token stops the server within a
//! bound, and a request slower than the timeout answers a 408 problem.

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        settings.http.request_timeout = std::time::Duration::from_millis(200)
    })
    .await;
    // A client that announces a body and then stalls: the handler waits for the body inside the
    // timeout, so the answer must be the timeout's, whatever the machine's speed. (A tiny timeout on
    // a fast request would race the handler instead.)
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("the API listens");
    let head = format!(
        "POST /v1/patients HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.admin_key
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("the request head is sent");
    // Read until the problem document has arrived or the server closes; TCP may split the answer.
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut answer = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            let read = stream
                .read(&mut chunk)
                .await
                .expect("the answer is readable");
            answer.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&answer).to_lowercase();
            if read == 0 || text.contains("urn:claimledger:problem:") {
                return text;
            }
        }
    })
    .await
    .expect("the API answers before the client gives up");
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(
        answer.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(
        answer.contains("urn:claimledger:problem:timeout"),
        "{answer}"
    );
}
