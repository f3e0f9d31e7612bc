//! The sessions API's settings: one typed, validated struct, loaded from the environment.
//!
//! `DATABASE_URL` and `NATS_URL` are shared with every ClaimLedger service and default to the local
//! stack; the `CLAIMLEDGER_SESSIONS_*` and `CLAIMLEDGER_LOG_*` variables tune this service. The
//! database URL holds a password, so it is a [`SecretString`] and never printed.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use claimledger_http_edge::config::parse;
pub use claimledger_http_edge::config::{ConfigError, DEFAULT_DATABASE_URL, DatabaseSettings};
use claimledger_log::LogConfig;
use secrecy::SecretString;

/// The NATS server every service uses unless `NATS_URL` says otherwise.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// The log stream every service shares unless `CLAIMLEDGER_LOG_STREAM` says otherwise.
pub const DEFAULT_LOG_STREAM: &str = "CLAIMLEDGER_EVENTS";
/// The log's subject prefix unless `CLAIMLEDGER_LOG_SUBJECT_PREFIX` says otherwise.
pub const DEFAULT_LOG_SUBJECT_PREFIX: &str = "ev";

/// How the HTTP server listens and bounds requests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The address to bind.
    pub host: IpAddr,
    /// The port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Requests taking longer answer 408 (default 15 s: longer than an append retries a log that
    /// does not answer, so that such a request answers 503 with `Retry-After` instead).
    pub request_timeout: Duration,
    /// Larger bodies answer 413.
    pub body_limit_bytes: usize,
}

/// Everything the sessions API needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The HTTP server.
    pub http: HttpSettings,
    /// PostgreSQL.
    pub database: DatabaseSettings,
    /// The NATS server URL.
    pub nats_url: String,
    /// The event log's stream and subjects.
    pub log: LogConfig,
}

impl Settings {
    /// Reads the settings from the process environment, validating each value.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let text =
            |name: &'static str, default: &str| lookup(name).unwrap_or_else(|| default.to_owned());
        let host = parse(
            "CLAIMLEDGER_SESSIONS_HOST",
            &text(
                "CLAIMLEDGER_SESSIONS_HOST",
                &Ipv4Addr::LOCALHOST.to_string(),
            ),
        )?;
        let port = parse(
            "CLAIMLEDGER_SESSIONS_PORT",
            &text("CLAIMLEDGER_SESSIONS_PORT", "8080"),
        )?;
        let timeout_seconds: u64 = parse(
            "CLAIMLEDGER_SESSIONS_REQUEST_TIMEOUT_SECONDS",
            &text("CLAIMLEDGER_SESSIONS_REQUEST_TIMEOUT_SECONDS", "15"),
        )?;
        let body_limit_bytes = parse(
            "CLAIMLEDGER_SESSIONS_BODY_LIMIT_BYTES",
            &text("CLAIMLEDGER_SESSIONS_BODY_LIMIT_BYTES", "65536"),
        )?;
        let max_connections = parse(
            "CLAIMLEDGER_SESSIONS_DB_CONNECTIONS",
            &text("CLAIMLEDGER_SESSIONS_DB_CONNECTIONS", "10"),
        )?;
        if timeout_seconds == 0 {
            return Err(ConfigError {
                variable: "CLAIMLEDGER_SESSIONS_REQUEST_TIMEOUT_SECONDS",
                reason: "must be at least 1".to_owned(),
            });
        }
        // Replicas apply when this service creates the log's streams (3 in production).
        let log = LogConfig {
            replicas: parse(
                "CLAIMLEDGER_LOG_REPLICAS",
                &text("CLAIMLEDGER_LOG_REPLICAS", "1"),
            )?,
            ..LogConfig::new(
                text("CLAIMLEDGER_LOG_STREAM", DEFAULT_LOG_STREAM),
                text("CLAIMLEDGER_LOG_SUBJECT_PREFIX", DEFAULT_LOG_SUBJECT_PREFIX),
            )
        };
        log.validate().map_err(|error| ConfigError {
            variable: "CLAIMLEDGER_LOG_STREAM",
            reason: error.to_string(),
        })?;
        let settings = Settings {
            http: HttpSettings {
                host,
                port,
                request_timeout: Duration::from_secs(timeout_seconds),
                body_limit_bytes,
            },
            database: DatabaseSettings {
                url: SecretString::from(text("DATABASE_URL", DEFAULT_DATABASE_URL)),
                max_connections,
            },
            nats_url: text("NATS_URL", DEFAULT_NATS_URL),
            log,
        };
        settings.database.connect_options()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn given_no_variables_when_loaded_then_the_local_stack_defaults_apply() {
        let settings = Settings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(settings.http.port, 8080);
        assert_eq!(settings.nats_url, DEFAULT_NATS_URL);
        assert_eq!(settings.log.stream_name, DEFAULT_LOG_STREAM);
        assert_eq!(settings.database.url.expose_secret(), DEFAULT_DATABASE_URL);
    }

    #[test]
    fn given_a_bad_port_when_loaded_then_the_error_names_the_variable() {
        let error =
            Settings::from_lookup(lookup(&[("CLAIMLEDGER_SESSIONS_PORT", "http")])).unwrap_err();
        assert_eq!(error.variable, "CLAIMLEDGER_SESSIONS_PORT");
    }

    #[test]
    fn given_a_zero_timeout_when_loaded_then_it_is_refused() {
        let error = Settings::from_lookup(lookup(&[(
            "CLAIMLEDGER_SESSIONS_REQUEST_TIMEOUT_SECONDS",
            "0",
        )]))
        .unwrap_err();
        assert_eq!(
            error.variable,
            "CLAIMLEDGER_SESSIONS_REQUEST_TIMEOUT_SECONDS"
        );
    }

    #[test]
    fn given_settings_when_debug_printed_then_the_database_password_is_hidden() {
        let settings =
            Settings::from_lookup(lookup(&[("DATABASE_URL", "postgres://u:hunter2@db/x")]))
                .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
