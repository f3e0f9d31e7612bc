//! The served OpenAPI document equals the checked-in `openapi.json` and describes every report.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_served_openapi_document_equals_the_checked_in_file() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let reply = app.get("/openapi.json", None, None).await;
    assert_eq!(reply.status, reqwest::StatusCode::OK);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &reply.text)?;
    }
    let checked_in = std::fs::read_to_string(path)?;
    assert_eq!(
        reply.text, checked_in,
        "the API changed: regenerate openapi.json with UPDATE_OPENAPI=1"
    );
    let document = reply.json();
    for report in ["reimbursement", "denial-reasons", "best-code", "outliers"] {
        let operation = &document["paths"][format!("/v1/reports/{report}")]["get"];
        assert!(operation.is_object(), "{report}");
        let content = &operation["responses"]["200"]["content"];
        assert!(content["application/json"].is_object(), "{report}");
        assert!(content["text/csv"].is_object(), "{report}");
    }
    let parameters = document["paths"]["/v1/reports/reimbursement"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    for name in [
        "from",
        "to",
        "clinic_id",
        "region",
        "payer_id",
        "code",
        "group_by",
        "format",
    ] {
        assert!(
            parameters.iter().any(|parameter| parameter["name"] == name),
            "{name}"
        );
    }
    app.stop().await
}
