//! Provider data for claims: each clinic's NPI, tax id, time zone and place of service, and each
//! therapist's NPI, from the log's `ClinicRegistered` and `TherapistRegistered` events.
//!
//! A batch's directory is built from the projector's own schema (the `clinics` and `therapists`
//! tables earlier batches wrote, see [`crate::reference`]) plus the reference events of the batch
//! itself, and cached. It never reads the sessions API's tables, so a rebuild into a fresh schema is
//! derived from the log alone.
//!
//! The batch's events are taken in before its sessions are folded; a session cannot name a clinic
//! or therapist registered after it (the sessions API validates against what is registered), so the
//! result does not depend on where batches are cut.

use std::str::FromStr;

use chrono_tz::Tz;
use claimledger_billing::claim::PlaceOfService;
use claimledger_billing::{Npi, TaxId};
use claimledger_events::Event;
use claimledger_log::ReplayItem;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ProjectorError;
use crate::hashing::{HashMap, HashSet};

/// What a claim needs to know about a clinic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicProfile {
    /// The billing provider's NPI.
    pub npi: Npi,
    /// The billing provider's federal tax id.
    pub tax_id: TaxId,
    /// The zone the date of service is taken in.
    pub time_zone: Tz,
    /// The CMS place of service code.
    pub place_of_service: PlaceOfService,
}

/// A clinic or therapist row that exists but cannot be used, kept as the reason.
pub type Unusable = String;

/// Cached clinic and therapist data, loaded on first use.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    clinics: HashMap<Uuid, Result<ClinicProfile, Unusable>>,
    therapists: HashMap<Uuid, Result<Npi, Unusable>>,
}

impl Directory {
    /// The clinic's profile: `None` when unknown, `Some(Err)` when its row is unusable.
    pub fn clinic(&self, clinic: Uuid) -> Option<&Result<ClinicProfile, Unusable>> {
        self.clinics.get(&clinic)
    }

    /// The therapist's NPI: `None` when unknown, `Some(Err)` when the row is unusable.
    pub fn therapist(&self, therapist: Uuid) -> Option<&Result<Npi, Unusable>> {
        self.therapists.get(&therapist)
    }

    /// Takes in the batch's clinic and therapist registrations, then loads from `schema` the rows
    /// of the given clinics and therapists that are still not cached, in two queries. Ids without a
    /// row stay unknown and are asked for again next time.
    pub async fn load_missing(
        &mut self,
        pool: &PgPool,
        schema: &str,
        items: &[ReplayItem],
        clinics: &HashSet<Uuid>,
        therapists: &HashSet<Uuid>,
    ) -> Result<(), ProjectorError> {
        self.absorb(items);
        let missing_clinics: Vec<Uuid> = clinics
            .iter()
            .filter(|id| !self.clinics.contains_key(id))
            .copied()
            .collect();
        if !missing_clinics.is_empty() {
            let rows: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(&format!(
                "SELECT clinic_id, npi, tax_id, time_zone, place_of_service FROM {schema}.clinics \
                 WHERE clinic_id = ANY($1)"
            ))
            .bind(&missing_clinics)
            .persistent(false)
            .fetch_all(pool)
            .await
            .map_err(ProjectorError::db("reading clinics"))?;
            for (id, npi, tax_id, time_zone, place_of_service) in rows {
                self.clinics.insert(
                    id,
                    clinic_profile(&npi, &tax_id, &time_zone, &place_of_service),
                );
            }
        }
        let missing_therapists: Vec<Uuid> = therapists
            .iter()
            .filter(|id| !self.therapists.contains_key(id))
            .copied()
            .collect();
        if !missing_therapists.is_empty() {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(&format!(
                "SELECT therapist_id, npi FROM {schema}.therapists WHERE therapist_id = ANY($1)"
            ))
            .bind(&missing_therapists)
            .persistent(false)
            .fetch_all(pool)
            .await
            .map_err(ProjectorError::db("reading therapists"))?;
            for (id, npi) in rows {
                self.therapists.insert(id, therapist_npi(&npi));
            }
        }
        Ok(())
    }

    /// The directory of the clinics and therapists registered by `items` (a whole log or a chain's
    /// part of it), for readers that derive claims without a read-model schema.
    pub fn from_log(items: &[ReplayItem]) -> Directory {
        let mut directory = Directory::default();
        directory.absorb(items);
        directory
    }

    /// Caches the clinics and therapists registered by `items`.
    fn absorb(&mut self, items: &[ReplayItem]) {
        for item in items {
            let ReplayItem::Commit(recorded) = item else {
                continue;
            };
            let id = recorded.commit.aggregate_id.as_uuid();
            for record in &recorded.commit.events {
                match &record.event {
                    Event::ClinicRegistered(clinic) => {
                        self.clinics.insert(
                            id,
                            clinic_profile(
                                &clinic.npi,
                                &clinic.tax_id,
                                &clinic.time_zone,
                                &clinic.place_of_service,
                            ),
                        );
                    }
                    Event::TherapistRegistered(therapist) => {
                        self.therapists.insert(id, therapist_npi(&therapist.npi));
                    }
                    _ => {}
                }
            }
        }
    }
}

fn therapist_npi(npi: &str) -> Result<Npi, Unusable> {
    Npi::parse("therapists.npi", npi).map_err(|error| error.to_string())
}

fn clinic_profile(
    npi: &str,
    tax_id: &str,
    time_zone: &str,
    place_of_service: &str,
) -> Result<ClinicProfile, Unusable> {
    let npi = Npi::parse("clinics.npi", npi).map_err(|error| error.to_string())?;
    let tax_id = TaxId::parse("clinics.tax_id", tax_id).map_err(|error| error.to_string())?;
    let time_zone = Tz::from_str(time_zone)
        .map_err(|_| format!("clinics.time_zone: {time_zone:?} is not an IANA zone name"))?;
    let place_of_service = place_of_service
        .parse::<u8>()
        .map(PlaceOfService)
        .map_err(|_| format!("clinics.place_of_service: {place_of_service:?} is not a number"))?;
    Ok(ClinicProfile {
        npi,
        tax_id,
        time_zone,
        place_of_service,
    })
}
