//! API keys: creation (shown once, stored as SHA-256), listing, revocation and expiry,
//! authentication of every request, roles and clinic scopes. Both HTTP services authenticate with
//! these keys; the sessions API manages them.
//!
//! A key belongs to exactly one chain; the chain of every request comes from its key, never from
//! the request. Roles: front desk records visits, billing works claims, analysts read reports, and
//! admins manage keys and reference data.

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use claimledger_events::{ChainId, ClinicId};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// The prefix of every key, so a leaked key is recognisable in logs and scanners.
pub const KEY_PREFIX: &str = "clk_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages keys and reference data (clinics, therapists, payers, patients, coverages, referrals).
    Admin,
    /// Registers patients and records visits.
    FrontDesk,
    /// Works claims; reads sessions.
    Billing,
    /// Reads reports.
    Analyst,
}

impl Role {
    /// The role as stored and as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::FrontDesk => "front_desk",
            Role::Billing => "billing",
            Role::Analyst => "analyst",
        }
    }

    /// Parses the stored or typed spelling.
    pub fn parse(text: &str) -> Option<Role> {
        [Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst]
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

/// A key that may not do what it asks: the field concerned (`role`, `clinic_id`) and why. Each
/// service answers it as its 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Forbidden {
    /// `role` or `clinic_id`.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (never the key itself), recorded as the actor of every commit.
    pub key_id: Uuid,
    /// The chain the key belongs to.
    pub chain: ChainId,
    /// What the key may do.
    pub role: Role,
    /// The clinics the key is limited to; `None` for every clinic of the chain.
    pub clinics: Option<Vec<ClinicId>>,
}

impl Principal {
    /// Refuses with 403 unless the key has one of `allowed`.
    pub fn require_role(&self, allowed: &[Role]) -> Result<(), Forbidden> {
        if allowed.contains(&self.role) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|role| role.as_str()).collect();
        Err(Forbidden {
            field: "role".to_owned(),
            reason: format!(
                "this needs the role {}; the key has {}",
                names.join(" or "),
                self.role.as_str()
            ),
        })
    }

    /// Whether a key with `clinics` as its scope acts on nothing this key cannot: every key covers
    /// a subset of the chain, and `None` (every clinic) is covered only by `None`.
    pub fn covers(&self, clinics: Option<&[Uuid]>) -> bool {
        match (&self.clinics, clinics) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(asked)) => asked
                .iter()
                .all(|clinic| own.iter().any(|own| own.as_uuid() == *clinic)),
        }
    }

    /// Refuses with 403 unless the key's scope includes `clinic`.
    pub fn require_clinic(&self, clinic: ClinicId) -> Result<(), Forbidden> {
        match &self.clinics {
            Some(clinics) if !clinics.contains(&clinic) => Err(Forbidden {
                field: "clinic_id".to_owned(),
                reason: "the key is limited to other clinics of the chain".to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// A newly created key. The secret exists only here: it is returned once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The key's id.
    pub id: Uuid,
    /// The key to put in `Authorization: Bearer <key>`.
    pub secret: String,
}

/// A new random key: the prefix and 32 random bytes in hex (256 bits, so a fast hash is enough).
pub fn generate_key() -> String {
    let mut bytes = [0_u8; 32];
    // The thread generator is a CSPRNG (ChaCha12) seeded and periodically reseeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a key.
pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Registers a new chain (tenant) and returns its id.
pub async fn create_chain(pool: &PgPool, name: &str) -> Result<ChainId, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO chains (id, name) VALUES ($1, $2)")
        .bind(id)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(ChainId::from(id))
}

/// Creates a key for `chain` with `role`, limited to `clinics` if given, that does not expire.
pub async fn create_api_key(
    pool: &PgPool,
    chain: ChainId,
    role: Role,
    clinics: Option<&[ClinicId]>,
    label: &str,
) -> Result<CreatedKey, sqlx::Error> {
    create_expiring_api_key(pool, chain, role, clinics, label, None).await
}

/// Creates a key for `chain` with `role`, limited to `clinics` if given, that authenticates
/// nothing from `expires_at` on.
pub async fn create_expiring_api_key(
    pool: &PgPool,
    chain: ChainId,
    role: Role,
    clinics: Option<&[ClinicId]>,
    label: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedKey, sqlx::Error> {
    let id = Uuid::now_v7();
    let secret = generate_key();
    let clinic_ids: Option<Vec<Uuid>> =
        clinics.map(|clinics| clinics.iter().map(|clinic| clinic.as_uuid()).collect());
    sqlx::query(
        "INSERT INTO api_keys (id, chain_id, key_sha256, role, clinic_ids, label, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(chain.as_uuid())
    .bind(hash_key(&secret).to_vec())
    .bind(role.as_str())
    .bind(clinic_ids)
    .bind(label)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(CreatedKey { id, secret })
}

/// A stored key as its chain's admins see it (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRecord {
    /// The key's id.
    pub id: Uuid,
    /// Its role, as stored.
    pub role: String,
    /// Its clinic scope; `None` for every clinic.
    pub clinic_ids: Option<Vec<Uuid>>,
    /// Who holds it.
    pub label: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops authenticating, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The keys of `chain`, oldest first.
pub async fn list_api_keys(pool: &PgPool, chain: ChainId) -> Result<Vec<KeyRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, role, clinic_ids, label, created_at, expires_at, revoked_at FROM api_keys \
         WHERE chain_id = $1 ORDER BY created_at, id",
    )
    .bind(chain.as_uuid())
    .fetch_all(pool)
    .await
}

/// Revokes key `id` of `chain` at once (every later request with it answers 401). Returns the
/// key as it now stands, `None` when the chain has no such key. Revoking twice keeps the first
/// instant.
pub async fn revoke_api_key(
    pool: &PgPool,
    chain: ChainId,
    id: Uuid,
) -> Result<Option<KeyRecord>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE chain_id = $1 AND id = $2 \
         RETURNING id, role, clinic_ids, label, created_at, expires_at, revoked_at",
    )
    .bind(chain.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Bootstraps a tenant: creates the chain and its first admin key (for the operator command and
/// the tests; every later key is created over the API by an admin).
pub async fn bootstrap_chain(
    pool: &PgPool,
    name: &str,
) -> Result<(ChainId, CreatedKey), sqlx::Error> {
    let chain = create_chain(pool, name).await?;
    let key = create_api_key(pool, chain, Role::Admin, None, "bootstrap admin").await?;
    Ok((chain, key))
}

/// The key a request carries in `Authorization: Bearer <key>`, if it looks like one of ours.
pub fn bearer_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| secret.starts_with(KEY_PREFIX))
}

/// Why a request has no principal.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No key, or one that is unknown, revoked or expired: 401.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthenticated,
    /// The key could not be looked up.
    #[error("the API keys could not be read")]
    Database(#[from] sqlx::Error),
}

/// The caller of a request: its bearer key, authenticated. The key's chain is recorded on the
/// request's span, so every later log line of the request names it.
pub async fn principal_of(headers: &HeaderMap, pool: &PgPool) -> Result<Principal, AuthError> {
    let secret = bearer_secret(headers).ok_or(AuthError::Unauthenticated)?;
    let principal = authenticate(pool, secret)
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    tracing::Span::current().record("chain_id", tracing::field::display(principal.chain));
    Ok(principal)
}

/// Finds the live key `secret` stands for.
pub async fn authenticate(pool: &PgPool, secret: &str) -> Result<Option<Principal>, sqlx::Error> {
    let row: Option<(Uuid, Uuid, String, Option<Vec<Uuid>>)> =
        sqlx::query_as("SELECT id, chain_id, role, clinic_ids FROM api_keys WHERE key_sha256 = $1 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > now())")
            .bind(hash_key(secret).to_vec())
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(key_id, chain, role, clinics)| {
        Some(Principal {
            key_id,
            chain: ChainId::from(chain),
            role: Role::parse(&role)?,
            clinics: clinics.map(|clinics| clinics.into_iter().map(ClinicId::from).collect()),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_two_generated_keys_when_compared_then_they_differ_and_carry_the_prefix() {
        let (first, second) = (generate_key(), generate_key());
        assert_ne!(first, second);
        assert!(first.starts_with(KEY_PREFIX));
        assert_eq!(first.len(), KEY_PREFIX.len() + 64);
    }

    #[test]
    fn given_a_key_when_hashed_then_the_hash_is_sha256_of_its_text() {
        let expected: [u8; 32] = Sha256::digest(b"clk_abc").into();
        assert_eq!(hash_key("clk_abc"), expected);
    }

    #[test]
    fn given_every_role_when_spelled_then_it_parses_back() {
        for role in [Role::Admin, Role::FrontDesk, Role::Billing, Role::Analyst] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn given_a_clinic_scoped_key_when_another_clinic_is_asked_then_it_is_forbidden() {
        let allowed = ClinicId::from_bytes([1; 16]);
        let principal = Principal {
            key_id: Uuid::nil(),
            chain: ChainId::from_bytes([9; 16]),
            role: Role::FrontDesk,
            clinics: Some(vec![allowed]),
        };
        assert!(principal.require_clinic(allowed).is_ok());
        let error = principal
            .require_clinic(ClinicId::from_bytes([2; 16]))
            .unwrap_err();
        assert_eq!(error.field, "clinic_id");
        assert_eq!(
            principal.require_role(&[Role::Admin]).unwrap_err().field,
            "role"
        );
    }
}
