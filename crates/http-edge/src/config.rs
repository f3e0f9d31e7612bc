//! The settings every service reads the same way: PostgreSQL's, and the typed reading of one
//! environment variable.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;

/// The database every service uses unless `DATABASE_URL` says otherwise.
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://claimledger:claimledger@127.0.0.1:5432/claimledger";

/// A setting that could not be used, naming the variable and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// Why its value was refused.
    pub reason: String,
}

/// Where PostgreSQL is.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// The connection URL, with its password.
    pub url: SecretString,
    /// The pool's size.
    pub max_connections: u32,
}

impl DatabaseSettings {
    /// The connection options the pool is built from.
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        PgConnectOptions::from_str(self.url.expose_secret()).map_err(|error| ConfigError {
            variable: "DATABASE_URL",
            reason: error.to_string(),
        })
    }
}

impl DatabaseSettings {
    /// `DATABASE_URL` (default [`DEFAULT_DATABASE_URL`]) and a pool of `connections_variable`
    /// connections (default 10), read through `lookup`.
    pub fn read(
        lookup: &impl Fn(&str) -> Option<String>,
        connections_variable: &'static str,
    ) -> Result<DatabaseSettings, ConfigError> {
        let max_connections = match lookup(connections_variable) {
            Some(value) => parse(connections_variable, &value)?,
            None => 10,
        };
        Ok(DatabaseSettings {
            url: SecretString::from(
                lookup("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            ),
            max_connections,
        })
    }
}

/// Parses `value`, the value of `variable`, naming both when it does not parse.
pub fn parse<T>(variable: &'static str, value: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|error: T::Err| ConfigError {
        variable,
        reason: format!("{value:?}: {error}"),
    })
}
