//! The served OpenAPI document equals the checked-in `openapi.json`.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_served_openapi_document_equals_the_checked_in_file() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let served = response.text().await.expect("a body");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &served).expect("write openapi.json");
    }
    let checked_in =
        std::fs::read_to_string(path).expect("crates/sessions-api/openapi.json exists");
    assert_eq!(
        served, checked_in,
        "the API changed: regenerate openapi.json with UPDATE_OPENAPI=1"
    );
    let document: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    assert!(document["paths"]["/v1/sessions/{id}/services"]["post"].is_object());
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}
