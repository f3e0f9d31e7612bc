//! The reporting service's settings, loaded from the environment: `DATABASE_URL` (shared with
//! every service) and `CLAIMLEDGER_REPORTING_*`. The database settings and their error type are
//! the HTTP edge's, so every service reads the same variables the same way.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use claimledger_http_edge::config::parse;
pub use claimledger_http_edge::config::{ConfigError, DEFAULT_DATABASE_URL, DatabaseSettings};
use secrecy::SecretString;

/// The port the service listens on unless `CLAIMLEDGER_REPORTING_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8081;

/// How the HTTP server listens and bounds requests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The address to bind.
    pub host: IpAddr,
    /// The port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Requests taking longer answer 408.
    pub request_timeout: Duration,
}

/// Everything the reporting service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The HTTP server.
    pub http: HttpSettings,
    /// PostgreSQL.
    pub database: DatabaseSettings,
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
            "CLAIMLEDGER_REPORTING_HOST",
            &text(
                "CLAIMLEDGER_REPORTING_HOST",
                &Ipv4Addr::LOCALHOST.to_string(),
            ),
        )?;
        let port = parse(
            "CLAIMLEDGER_REPORTING_PORT",
            &text("CLAIMLEDGER_REPORTING_PORT", &DEFAULT_PORT.to_string()),
        )?;
        let timeout_seconds: u64 = parse(
            "CLAIMLEDGER_REPORTING_REQUEST_TIMEOUT_SECONDS",
            &text("CLAIMLEDGER_REPORTING_REQUEST_TIMEOUT_SECONDS", "30"),
        )?;
        if timeout_seconds == 0 {
            return Err(ConfigError {
                variable: "CLAIMLEDGER_REPORTING_REQUEST_TIMEOUT_SECONDS",
                reason: "must be at least 1".to_owned(),
            });
        }
        let max_connections = parse(
            "CLAIMLEDGER_REPORTING_DB_CONNECTIONS",
            &text("CLAIMLEDGER_REPORTING_DB_CONNECTIONS", "10"),
        )?;
        let settings = Settings {
            http: HttpSettings {
                host,
                port,
                request_timeout: Duration::from_secs(timeout_seconds),
            },
            database: DatabaseSettings {
                url: SecretString::from(text("DATABASE_URL", DEFAULT_DATABASE_URL)),
                max_connections,
            },
        };
        settings.database.connect_options()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_no_variables_when_loaded_then_the_service_listens_on_8081() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(settings.http.port, 8081);
        assert_eq!(settings.http.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn given_a_bad_port_when_loaded_then_the_error_names_the_variable() {
        let error = Settings::from_lookup(|name| {
            (name == "CLAIMLEDGER_REPORTING_PORT").then(|| "eighty".to_owned())
        })
        .unwrap_err();
        assert_eq!(error.variable, "CLAIMLEDGER_REPORTING_PORT");
    }
}
