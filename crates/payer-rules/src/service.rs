//! The payer-rules NATS service: request/reply endpoints built on the async-nats service API, so
//! that `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` discovery works, each wrapping the same engine
//! the projector embeds. Bodies are the protobuf messages of `proto/payer_rules.proto`.
//!
//! A request that cannot be answered gets a typed error reply, never silence: the
//! `Nats-Service-Error` / `Nats-Service-Error-Code` headers plus an `ErrorReply` body naming the
//! error class and the field.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::service::{self, Service, ServiceExt};
use bytes::Bytes;
use futures::StreamExt;
use prost::Message;
use thiserror::Error;
use tokio::task::JoinSet;

use crate::rulebook::RuleBook;
use crate::wire::{self, WireError};

/// The name the service registers under; discovery subjects are `$SRV.<VERB>.payer-rules`.
pub const SERVICE_NAME: &str = "payer-rules";
/// The subject prefix used when none is configured.
pub const DEFAULT_SUBJECT_PREFIX: &str = "claimledger.payer_rules";
/// How long start-up waits for the server to confirm the endpoint subscriptions.
const SUBSCRIPTION_CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The header holding the error text of an error reply (the service API's name).
pub const ERROR_HEADER: &str = "Nats-Service-Error";
/// The header holding the numeric status of an error reply (the service API's name).
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

/// The endpoints, named by the last token of their subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// `<prefix>.decide`: one line.
    Decide,
    /// `<prefix>.choose_code`: which supported code to bill.
    ChooseCode,
    /// `<prefix>.visit`: a whole visit, optionally under a named rules version.
    Visit,
}

impl EndpointKind {
    /// Every endpoint.
    pub const ALL: [EndpointKind; 3] = [
        EndpointKind::Decide,
        EndpointKind::ChooseCode,
        EndpointKind::Visit,
    ];

    /// The last subject token.
    pub const fn token(self) -> &'static str {
        match self {
            EndpointKind::Decide => "decide",
            EndpointKind::ChooseCode => "choose_code",
            EndpointKind::Visit => "visit",
        }
    }

    /// The full subject under `prefix`.
    pub fn subject(self, prefix: &str) -> String {
        format!("{prefix}.{}", self.token())
    }

    /// Answers one request body: the encoded reply, or the typed error.
    pub fn answer(self, book: &RuleBook, body: &[u8]) -> Result<Bytes, WireError> {
        let encoded = match self {
            EndpointKind::Decide => wire::decide(book, body)?.encode_to_vec(),
            EndpointKind::ChooseCode => wire::choose_code(book, body)?.encode_to_vec(),
            EndpointKind::Visit => wire::visit(book, body)?.encode_to_vec(),
        };
        Ok(Bytes::from(encoded))
    }
}

/// Settings of one service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Endpoint subjects are `<subject_prefix>.<endpoint>`; tests use a unique prefix each.
    pub subject_prefix: String,
}

impl ServiceConfig {
    /// A configuration with `subject_prefix`.
    pub fn new(subject_prefix: impl Into<String>) -> ServiceConfig {
        ServiceConfig {
            subject_prefix: subject_prefix.into(),
        }
    }
}

/// The service could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The subject prefix is not a valid NATS subject prefix.
    #[error("subject_prefix: {prefix:?} {reason}")]
    InvalidPrefix {
        /// The prefix given.
        prefix: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Registering the service or one of its endpoints failed.
    #[error("registering the payer-rules service on NATS failed: {0}")]
    Register(#[source] async_nats::Error),
    /// An endpoint task failed.
    #[error("a payer-rules endpoint task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn validate_prefix(prefix: &str) -> Result<(), ServiceError> {
    let reason = if prefix.is_empty() {
        Some("must not be empty")
    } else if prefix.split('.').any(str::is_empty) {
        Some("must not have empty tokens")
    } else if prefix
        .chars()
        .any(|c| c.is_whitespace() || c == '*' || c == '>')
    {
        Some("must not contain whitespace or wildcards")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ServiceError::InvalidPrefix {
            prefix: prefix.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A registered service whose endpoints are subscribed and ready: requests sent after
/// [`PayerRulesService::start`] returns are answered once [`PayerRulesService::run_until_stopped`]
/// runs.
pub struct PayerRulesService {
    service: Service,
    endpoints: Vec<(EndpointKind, service::endpoint::Endpoint)>,
    book: Arc<RuleBook>,
}

// `Endpoint` has no `Debug`, so the service is described by what it serves.
impl std::fmt::Debug for PayerRulesService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoints: Vec<&str> = self
            .endpoints
            .iter()
            .map(|(kind, _)| kind.token())
            .collect();
        f.debug_struct("PayerRulesService")
            .field("endpoints", &endpoints)
            .field("payers", &self.book.payer_ids())
            .finish_non_exhaustive()
    }
}

impl PayerRulesService {
    /// Registers the service and subscribes its endpoints.
    pub async fn start(
        client: &async_nats::Client,
        book: Arc<RuleBook>,
        config: &ServiceConfig,
    ) -> Result<PayerRulesService, ServiceError> {
        validate_prefix(&config.subject_prefix)?;
        let metadata = HashMap::from([
            ("subject_prefix".to_owned(), config.subject_prefix.clone()),
            ("payers".to_owned(), book.payer_ids().join(",")),
        ]);
        let service = client
            .service_builder()
            .description("Payer rules: code acceptance, code choice and visit pricing (protobuf, proto/payer_rules.proto)")
            .metadata(metadata)
            .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(ServiceError::Register)?;
        let group = service.group(config.subject_prefix.as_str());
        let mut endpoints = Vec::with_capacity(EndpointKind::ALL.len());
        for kind in EndpointKind::ALL {
            let endpoint = group
                .endpoint(kind.token())
                .await
                .map_err(ServiceError::Register)?;
            endpoints.push((kind, endpoint));
        }
        confirm_subscriptions(client).await?;
        tracing::info!(
            subject_prefix = %config.subject_prefix,
            payers = book.payer_ids().len(),
            "payer-rules service registered"
        );
        Ok(PayerRulesService {
            service,
            endpoints,
            book,
        })
    }

    /// Serves requests until `shutdown` completes, then unregisters the service.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let PayerRulesService {
            service,
            endpoints,
            book,
        } = self;
        let mut tasks = JoinSet::new();
        for (kind, endpoint) in endpoints {
            tasks.spawn(serve_endpoint(kind, endpoint, Arc::clone(&book)));
        }
        let result = tokio::select! {
            () = shutdown => Ok(()),
            Some(joined) = tasks.join_next() => joined.map_err(ServiceError::from),
        };
        tasks.abort_all();
        if let Err(error) = service.stop().await {
            tracing::warn!(error.message = %error, "stopping the payer-rules service failed");
        }
        result
    }
}

/// Waits until the server has processed the endpoint subscriptions, so that a request sent from
/// any connection once [`PayerRulesService::start`] returns finds a responder. `flush` only empties
/// the client's write buffer; a message to a private inbox, sent after the subscriptions on the
/// same connection, comes back only after the server processed everything before it.
async fn confirm_subscriptions(client: &async_nats::Client) -> Result<(), ServiceError> {
    let inbox = client.new_inbox();
    let mut probe = client
        .subscribe(inbox.clone())
        .await
        .map_err(|error| ServiceError::Register(Box::new(error)))?;
    client
        .publish(inbox, Bytes::new())
        .await
        .map_err(|error| ServiceError::Register(Box::new(error)))?;
    let echoed = tokio::time::timeout(SUBSCRIPTION_CONFIRM_TIMEOUT, probe.next()).await;
    if !matches!(echoed, Ok(Some(_))) {
        return Err(ServiceError::Register(
            "the NATS server did not confirm the endpoint subscriptions in time".into(),
        ));
    }
    Ok(())
}

/// Answers every request of one endpoint in arrival order. Decisions take microseconds, so one
/// loop per endpoint keeps the service simple without becoming the bottleneck.
async fn serve_endpoint(
    kind: EndpointKind,
    mut endpoint: service::endpoint::Endpoint,
    book: Arc<RuleBook>,
) {
    while let Some(request) = endpoint.next().await {
        let result = match kind.answer(&book, &request.message.payload) {
            Ok(reply) => request.respond(Ok(reply)).await,
            Err(error) => {
                tracing::debug!(
                    endpoint = kind.token(),
                    error.code = error.code.as_str_name(),
                    error.field = %error.field,
                    error.message = %error.message,
                    "payer-rules request refused"
                );
                let mut headers = HeaderMap::new();
                headers.insert(ERROR_HEADER, error.message.as_str());
                headers.insert(ERROR_CODE_HEADER, error.status().to_string().as_str());
                let body = Bytes::from(error.to_reply().encode_to_vec());
                request.respond_with_headers(Ok(body), headers).await
            }
        };
        if let Err(error) = result {
            tracing::warn!(endpoint = kind.token(), error.message = %error, "replying failed");
        }
    }
}
