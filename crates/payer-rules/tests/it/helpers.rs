//! Shared test helpers: the shipped rules directory, dates, line queries, and a running service
//! on the real NATS server.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use claimledger_payer_rules::service::{
    PayerRulesService, SERVICE_NAME, ServiceConfig, ServiceError,
};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use chrono::NaiveDate;
use claimledger_billing::{CptCode, Icd10Code, Modifier};
use claimledger_payer_rules::{LineQuery, RuleBook, VisitContext, load_dir};

/// `rules/` at the workspace root.
pub fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// The shipped rules, loaded once per test binary.
pub fn book() -> &'static RuleBook {
    static BOOK: OnceLock<RuleBook> = OnceLock::new();
    BOOK.get_or_init(|| match load_dir(&rules_dir()) {
        Ok(book) => book,
        Err(error) => panic!("the shipped rules must load: {error}"),
    })
}

pub fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("test dates are valid")
}

pub fn low_back_pain() -> Vec<Icd10Code> {
    vec![Icd10Code::parse("diagnoses[0]", "M54.50").expect("a valid ICD-10-CM code")]
}

/// An owned line query, so tests can adjust fields before borrowing it as a [`LineQuery`].
#[derive(Debug, Clone)]
pub struct Line {
    pub date_of_service: NaiveDate,
    pub code: CptCode,
    pub units: u32,
    pub modifiers: Vec<Modifier>,
    pub diagnoses: Vec<Icd10Code>,
    pub other_codes_on_visit: Vec<CptCode>,
    pub supported_alternatives: Vec<CptCode>,
    pub context: VisitContext,
}

impl Line {
    /// A line with a diagnosis and a referral issued on the date of service, so that only the
    /// rule under test can refuse it.
    pub fn new(date_of_service: NaiveDate, code: CptCode, units: u32) -> Line {
        Line {
            date_of_service,
            code,
            units,
            modifiers: Vec::new(),
            diagnoses: low_back_pain(),
            other_codes_on_visit: Vec::new(),
            supported_alternatives: Vec::new(),
            context: VisitContext {
                referral_date: Some(date_of_service),
                ..VisitContext::default()
            },
        }
    }

    pub fn query(&self) -> LineQuery<'_> {
        LineQuery {
            date_of_service: self.date_of_service,
            code: self.code,
            units: self.units,
            modifiers: &self.modifiers,
            diagnoses: &self.diagnoses,
            other_codes_on_visit: &self.other_codes_on_visit,
            supported_alternatives: &self.supported_alternatives,
            context: self.context,
        }
    }
}

/// The NATS server the tests use: `NATS_URL`, or the local default.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A payer-rules service serving the shipped rules under a subject prefix unique to one test.
#[derive(Debug)]
pub struct RunningService {
    pub client: async_nats::Client,
    pub prefix: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl RunningService {
    pub async fn start() -> anyhow::Result<RunningService> {
        let client = async_nats::connect(nats_url()).await?;
        let prefix = format!("test.payer_rules.{}", uuid::Uuid::new_v4().simple());
        let service = PayerRulesService::start(
            &client,
            Arc::new(book().clone()),
            &ServiceConfig::new(prefix.clone()),
        )
        .await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(service.run_until_stopped(async move {
            // Either a stop signal or a dropped sender ends the service.
            let _ = stopped.await;
        }));
        Ok(RunningService {
            client,
            prefix,
            stop,
            task,
        })
    }

    /// Sends `body` to `<prefix>.<endpoint>` and waits (bounded) for the reply.
    pub async fn request(
        &self,
        endpoint: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<async_nats::Message> {
        let subject = format!("{}.{endpoint}", self.prefix);
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            self.client.request(subject, Bytes::from(body)),
        )
        .await??;
        Ok(reply)
    }

    /// Sends one `$SRV.<verb>.payer-rules` discovery request and returns the first answer that
    /// `is_ours` accepts; other tests' services may answer too.
    pub async fn discover<T: DeserializeOwned>(
        &self,
        verb: &str,
        is_ours: impl Fn(&T) -> bool,
    ) -> anyhow::Result<T> {
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await?;
        self.client
            .publish_with_reply(format!("$SRV.{verb}.{SERVICE_NAME}"), inbox, Bytes::new())
            .await?;
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(message) = replies.next().await {
                let answer: T = serde_json::from_slice(&message.payload)?;
                if is_ours(&answer) {
                    return Ok(answer);
                }
            }
            anyhow::bail!("the discovery subscription ended")
        })
        .await??;
        Ok(found)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}
