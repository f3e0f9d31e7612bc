//! The demo's HTTP client: calls the public API as a clinic's or a billing office's software would,
//! turning any non-2xx answer into an error that quotes the problem document.

use anyhow::{Context, bail};
use serde_json::Value;

/// The public HTTP API, called as a clinic's software would. Cheap to clone: the client shares its
/// connection pool.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) http: reqwest::Client,
    pub(super) base_url: String,
    pub(super) key: String,
}

impl Api {
    /// POSTs `body` to `path` and returns the JSON answer; anything but 2xx is an error that quotes
    /// the API's problem document.
    pub(super) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(path, body, None).await
    }

    async fn send(&self, path: &str, body: &Value, if_match: Option<u64>) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.key)
            .json(body);
        if let Some(version) = if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// POSTs with `If-Match` set to the aggregate version the command is based on.
    pub(super) async fn post_if_match(
        &self,
        path: &str,
        body: &Value,
        version: u64,
    ) -> anyhow::Result<Value> {
        self.send(path, body, Some(version)).await
    }

    /// POSTs and returns the `id` of what was created.
    pub(super) async fn create(&self, path: &str, body: &Value) -> anyhow::Result<String> {
        let answer = self.post(path, body).await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("POST {path} answered without an id: {answer}"))
    }
}
