//! Recording reference data, without HTTP: every create appends one reference event
//! (`ClinicRegistered`, …) as a chain-wide aggregate (its id is the entity's id, expected version 0
//! for a new one) and then projects it into the PostgreSQL table the API validates against
//! ([`crate::projection`]), so the next request sees it.

use claimledger_events::reference::{CoverageRecorded, PatientForgotten, PatientRegistered};
use claimledger_events::{AggregateId, AggregateKind, ChainId, ClinicId, Event};
use claimledger_log::AggregateAddress;
use uuid::Uuid;

use crate::auth::Principal;
use crate::commit;
use crate::error::ApiError;
use crate::extract::CommandMeta;
use crate::projection;
use crate::startup::AppState;
use crate::store::{self, ClinicRow, PatientPhi, PatientRow, PayerRow, ReferenceTable};

pub(crate) fn reference_address(chain: ChainId, kind: AggregateKind, id: Uuid) -> AggregateAddress {
    AggregateAddress {
        chain,
        clinic: None,
        kind,
        id: AggregateId::from(id),
    }
}

/// Appends `event` to the reference aggregate `id` of `kind` at `expected_version` (0 = new) and
/// projects it, so the next request sees it. Returns the commit's sequence.
async fn record(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    kind: AggregateKind,
    id: Uuid,
    expected_version: u64,
    event: Event,
) -> Result<u64, ApiError> {
    let address = reference_address(principal.chain, kind, id);
    let now = state.clock.now_micros();
    let commit = commit::build(
        principal,
        meta,
        &address,
        now,
        vec![commit::record(event, now)],
    );
    let appended = state
        .log
        .append(&address, expected_version, &commit)
        .await?;
    let mut connection = state.pool.acquire().await?;
    if appended.duplicate {
        // A retry: project what the log holds (the first attempt's commit), not this copy.
        for recorded in state.log.read(&address).await?.commits {
            projection::apply_commit(&mut connection, recorded.sequence, &recorded.commit).await?;
        }
    } else {
        projection::apply_commit(&mut connection, appended.sequence, &commit).await?;
    }
    Ok(appended.sequence)
}

/// Whether an append failure is definitive (nothing was stored), as opposed to an unknown outcome
/// that a retry with the same key will settle.
fn append_refused(error: &ApiError) -> bool {
    !matches!(error, ApiError::LogUnavailable(_))
}

/// Whether the patient's aggregate is on the log (a refused append must not delete the PHI of a
/// patient a first attempt did register).
async fn patient_on_log(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<bool, ApiError> {
    let address = reference_address(principal.chain, AggregateKind::Patient, id);
    Ok(state.log.version(&address).await? > 0)
}

/// Refuses, naming `field`, an id of `table` the caller's chain does not have.
pub(crate) async fn require_exists(
    state: &AppState,
    principal: &Principal,
    table: ReferenceTable,
    id: Uuid,
    field: &str,
    what: &str,
) -> Result<(), ApiError> {
    if store::exists(&state.pool, table, principal.chain, id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(field, what))
    }
}

/// Registers a new entity of `kind`: its first commit, projected.
pub(crate) async fn register(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    kind: AggregateKind,
    id: Uuid,
    event: Event,
) -> Result<(), ApiError> {
    record(state, principal, meta, kind, id, 0, event)
        .await
        .map(drop)
}

/// Registers a payer unless its aggregate exists (the id derives from the rules key, so the same
/// key names the same payer), and returns the payer as stored, if projected.
pub(crate) async fn register_payer(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    event: Event,
) -> Result<Option<PayerRow>, ApiError> {
    let address = reference_address(principal.chain, AggregateKind::Payer, id);
    if state.log.version(&address).await? == 0 {
        match record(state, principal, meta, AggregateKind::Payer, id, 0, event).await {
            Ok(_) | Err(ApiError::VersionConflict { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(store::payer_row(&state.pool, principal.chain, id).await?)
}

/// Registers a patient: the PHI into its table first, then `PatientRegistered` (which holds none).
/// A refused append removes the PHI again, unless a first attempt did register the patient.
pub(crate) async fn register_patient(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    phi: &PatientPhi<'_>,
) -> Result<(), ApiError> {
    let id = phi.patient;
    store::insert_patient_phi(&state.pool, principal.chain, phi).await?;
    let event = Event::PatientRegistered(PatientRegistered {});
    if let Err(error) = record(state, principal, meta, AggregateKind::Patient, id, 0, event).await {
        if append_refused(&error) && !patient_on_log(state, principal, id).await? {
            let mut connection = state.pool.acquire().await?;
            projection::delete_phi(&mut connection, principal.chain.as_uuid(), id).await?;
        }
        return Err(error);
    }
    Ok(())
}

/// A patient of the caller's chain as stored (PHI included, unless forgotten).
pub(crate) async fn patient(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<PatientRow, ApiError> {
    store::patient_row(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("id", "patient"))
}

/// A clinic of the caller's chain and clinics, as stored.
pub(crate) async fn clinic(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<ClinicRow, ApiError> {
    principal.require_clinic(ClinicId::from(id))?;
    store::clinic_row(&state.pool, principal.chain, id)
        .await?
        .ok_or_else(|| ApiError::not_found("id", "clinic"))
}

/// Forgets a patient's PHI: appends `PatientForgotten`, whose projection deletes the names, date of
/// birth and coverages' member ids. For a patient already forgotten it only deletes whatever PHI
/// is left, and appends nothing.
pub(crate) async fn forget_patient(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    reason: String,
) -> Result<(), ApiError> {
    match store::patient_forgotten(&state.pool, principal.chain, id).await? {
        None => Err(ApiError::not_found("id", "patient")),
        Some(true) => {
            let mut connection = state.pool.acquire().await?;
            projection::delete_phi(&mut connection, principal.chain.as_uuid(), id).await?;
            Ok(())
        }
        Some(false) => {
            let address = reference_address(principal.chain, AggregateKind::Patient, id);
            let version = state.log.version(&address).await?;
            let event = Event::PatientForgotten(PatientForgotten { reason });
            record(
                state,
                principal,
                meta,
                AggregateKind::Patient,
                id,
                version,
                event,
            )
            .await
            .map(drop)
        }
    }
}

/// Records a coverage: the member id (PHI) into its table first, then `CoverageRecorded` (which
/// holds none). A refused append removes the member id again, unless a first attempt did record it.
pub(crate) async fn register_coverage(
    state: &AppState,
    principal: &Principal,
    meta: &CommandMeta,
    id: Uuid,
    member_id: &str,
    recorded: CoverageRecorded,
) -> Result<(), ApiError> {
    store::insert_coverage_phi(
        &state.pool,
        principal.chain,
        id,
        recorded.patient.as_uuid(),
        member_id,
    )
    .await?;
    let event = Event::CoverageRecorded(recorded);
    if let Err(error) = record(
        state,
        principal,
        meta,
        AggregateKind::Coverage,
        id,
        0,
        event,
    )
    .await
    {
        let address = reference_address(principal.chain, AggregateKind::Coverage, id);
        if append_refused(&error) && state.log.version(&address).await? == 0 {
            store::delete_coverage_phi(&state.pool, principal.chain, id).await?;
        }
        return Err(error);
    }
    Ok(())
}
