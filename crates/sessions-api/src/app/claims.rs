//! The claim commands and reads, without HTTP.
//!
//! A claim is found by its log id (`ClaimId::for_session_and_payer`) through the projector's
//! `read_models.claim_ids` and `read_models.claims`, filtered by the caller's chain, so a claim
//! exists for the API once the projector has derived it. Commands run through the aggregate
//! pipeline ([`crate::aggregate::Target::run`]) like the session commands: the claim's current
//! state (cached when the cache holds the log's current version, see [`ClaimCache`]), the pure
//! `claimledger-claims` domain's decision, one commit appended with the version just read (or
//! `If-Match`) as the expected version.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use claimledger_claims::claim::{Claim, ClaimStatus};
use claimledger_claims::command::{ClaimCommand, DecisionContext, LineInput};
use claimledger_claims::error::ClaimError;
use claimledger_claims::event::ClaimEvent;
use claimledger_claims::schema::{from_log_event, to_log_event};
use claimledger_events::{AggregateKind, ChainId, ClaimId, ClinicId, EventRecord};
use claimledger_log::AggregateAddress;
use sqlx::PgPool;
use uuid::Uuid;

use crate::aggregate::{Aggregate, Loaded, StateCache, Target};
use crate::auth::Principal;
use crate::commit;
use crate::error::ApiError;
use crate::extract::CommandMeta;
use crate::startup::AppState;
use crate::store;

/// Where a claim lives, from the read models.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) session: Uuid,
    pub(crate) payer: Uuid,
    pub(crate) clinic: ClinicId,
    pub(crate) date_of_service: Option<NaiveDate>,
    pub(crate) derivation_error: Option<String>,
    pub(crate) time_zone: Tz,
}

/// A claim as a command or a read leaves it.
#[derive(Debug)]
pub(crate) struct ClaimState {
    pub(crate) id: Uuid,
    pub(crate) located: Located,
    pub(crate) loaded: Loaded<Claim>,
    /// A draft's lines as the projector derived them (empty once submitted).
    pub(crate) derived: Vec<LineInput>,
}

/// What a claim command asks for.
#[derive(Debug, Clone)]
pub(crate) enum ClaimRequest {
    /// Submit the derived lines as they are now.
    Submit,
    /// A command the request states whole.
    Decided(ClaimCommand),
}

impl From<ClaimError> for ApiError {
    fn from(error: ClaimError) -> ApiError {
        let field = error.field().to_owned();
        let reason = error.reason();
        if error.is_state_conflict() {
            ApiError::StateConflict { field, reason }
        } else {
            ApiError::Invalid { field, reason }
        }
    }
}

async fn locate(pool: &PgPool, chain: ChainId, claim: Uuid) -> Result<Option<Located>, ApiError> {
    store::claim_row(pool, chain, claim)
        .await?
        .map(|row| {
            Ok(Located {
                session: row.session_id,
                payer: row.payer_id,
                clinic: ClinicId::from(row.clinic_id),
                date_of_service: row.date_of_service,
                derivation_error: row.derivation_error,
                time_zone: row.time_zone.parse::<Tz>().map_err(|_| {
                    ApiError::corrupt(format!("unknown time zone {:?}", row.time_zone))
                })?,
            })
        })
        .transpose()
}

fn target<'a>(
    state: &'a AppState,
    chain: ChainId,
    located: &Located,
    claim: Uuid,
) -> Target<'a, Claim, ()> {
    Target {
        log: &state.log,
        cache: &state.claims,
        address: AggregateAddress {
            chain,
            clinic: Some(located.clinic),
            kind: AggregateKind::Claim,
            id: ClaimId::from(claim).into(),
        },
        id: claim,
        whereabouts: (),
        decoding: (),
    }
}

/// Claims as this process last wrote or read them, at their versions.
///
/// Reading a claim from the log replays its commits through a consumer: several round trips, and a
/// consumer the server keeps until it times out. Every command and read first looks up the claim's
/// current version (one cheap last-by-subject lookup) and uses a cached state only when it is at
/// exactly that version, so it decides on the same state a replay would give.
pub(crate) type ClaimCache = StateCache<Claim, ()>;

impl Aggregate for Claim {
    type Event = ClaimEvent;
    type Decoding = ();
    const RESOURCE: &'static str = "claim";

    fn from_events(events: &[ClaimEvent]) -> Claim {
        Claim::from_events(events)
    }

    fn apply(&mut self, event: &ClaimEvent) {
        Claim::apply(self, event);
    }

    fn decode((): (), record: &EventRecord) -> Result<Option<ClaimEvent>, ApiError> {
        from_log_event(&record.event)
            .map_err(|error| ApiError::corrupt(format!("a stored claim event: {error}")))
    }

    fn records(events: &[ClaimEvent], now: DateTime<Utc>) -> Vec<EventRecord> {
        events
            .iter()
            .map(|event| commit::record(to_log_event(event), now))
            .collect()
    }
}

/// The derived claim's lines, as the projector wrote them.
async fn derived_lines(
    pool: &PgPool,
    chain: ChainId,
    located: &Located,
) -> Result<Vec<LineInput>, ApiError> {
    Ok(
        store::derived_lines(pool, chain, located.session, located.payer)
            .await?
            .into_iter()
            .map(|row| LineInput {
                code: row.code,
                modifiers: row.modifiers,
                units: u16::try_from(row.units).unwrap_or(u16::MAX),
                charge_cents: row.charge_cents,
            })
            .collect(),
    )
}

/// The domain command `request` asks for; `derived` holds the derived lines a submission sends.
fn command_of(
    located: &Located,
    request: &ClaimRequest,
    derived: &[LineInput],
) -> Result<ClaimCommand, ApiError> {
    match request {
        ClaimRequest::Decided(command) => Ok(command.clone()),
        ClaimRequest::Submit => {
            if let Some(error) = &located.derivation_error {
                return Err(ApiError::invalid(
                    "claim_id",
                    format!(
                        "the claim could not be derived ({error}); it can be submitted once the projector derives it"
                    ),
                ));
            }
            let date_of_service = located.date_of_service.ok_or_else(|| {
                ApiError::invalid("claim_id", "the derived claim has no date of service")
            })?;
            Ok(ClaimCommand::Submit {
                session: located.session.into(),
                payer: located.payer.into(),
                date_of_service,
                lines: derived.to_vec(),
            })
        }
    }
}

/// The claim of the caller's chain and clinics, found.
async fn found(state: &AppState, principal: &Principal, id: Uuid) -> Result<Located, ApiError> {
    let located = locate(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("claim_id", "claim"))?;
    principal.require_clinic(located.clinic)?;
    Ok(located)
}

/// The claim's state with what its view shows.
async fn state_of(
    state: &AppState,
    chain: ChainId,
    id: Uuid,
    located: Located,
    loaded: Loaded<Claim>,
) -> Result<ClaimState, ApiError> {
    let derived = if loaded.state.status() == ClaimStatus::Draft {
        derived_lines(&state.pool, chain, &located).await?
    } else {
        Vec::new()
    };
    Ok(ClaimState {
        id,
        located,
        loaded,
        derived,
    })
}

/// Runs one claim command: find, load, decide, append.
pub(crate) async fn execute(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    request: ClaimRequest,
) -> Result<ClaimState, ApiError> {
    let chain = principal.chain;
    let located = found(state, principal, id).await?;
    let claim = target(state, chain, &located, id);
    let loaded = claim.load_current().await?;
    let now = state.clock.now_micros();
    let context = DecisionContext::at(now, located.time_zone);
    // What a submission sends is read before the decision, which the pipeline makes without I/O.
    let derived = match request {
        ClaimRequest::Submit if located.derivation_error.is_none() => {
            derived_lines(&state.pool, chain, &located).await?
        }
        _ => Vec::new(),
    };
    let ran = claim
        .run(principal, meta, now, loaded, false, |loaded| {
            let command = command_of(&located, &request, &derived)?;
            Ok(loaded.state.decide(&command, &context)?)
        })
        .await?;
    state_of(state, chain, id, located, ran.into_loaded()).await
}

/// Reads a claim of the caller's chain and clinics at the log's current version.
pub(crate) async fn read(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<ClaimState, ApiError> {
    let located = found(state, principal, id).await?;
    let loaded = target(state, principal.chain, &located, id)
        .load_current()
        .await?;
    state_of(state, principal.chain, id, located, loaded).await
}
