//! Provider data for claims: each clinic's NPI, tax id, time zone and place of service, and each
//! therapist's NPI, from the log's `ClinicRegistered` and `TherapistRegistered` events.
//!
//! A projector batch's directory is built from the projector's own schema (the `clinics` and
//! `therapists` tables earlier batches wrote, see [`crate::reference`]; the store reads them) plus
//! the reference events of the batch itself, and cached. It never reads the sessions API's tables, so a rebuild into a fresh schema is
//! derived from the log alone.
//!
//! The batch's events are taken in before its sessions are folded; a session cannot name a clinic
//! or therapist registered after it (the sessions API validates against what is registered), so the
//! result does not depend on where batches are cut.

use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use claimledger_billing::claim::{PlaceOfService, Referral};
use claimledger_billing::{Npi, TaxId};
use claimledger_events::Event;
use claimledger_events::ReplayItem;
use claimledger_sessions::schema::from_epoch_day;
use uuid::Uuid;

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

/// Cached clinic, therapist and referral data, loaded on first use.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    clinics: HashMap<Uuid, Result<ClinicProfile, Unusable>>,
    therapists: HashMap<Uuid, Result<Npi, Unusable>>,
    referrals: HashMap<Uuid, Result<Referral, Unusable>>,
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

    /// The referral as the billing core judges it: `None` when unknown, `Some(Err)` when its
    /// dates are unusable.
    pub fn referral(&self, referral: Uuid) -> Option<&Result<Referral, Unusable>> {
        self.referrals.get(&referral)
    }

    /// Of `referrals`, those not cached yet: the store loads them with [`Self::insert_referral`].
    pub fn missing_referrals(&self, referrals: &HashSet<Uuid>) -> Vec<Uuid> {
        referrals
            .iter()
            .filter(|id| !self.referrals.contains_key(id))
            .copied()
            .collect()
    }

    /// Caches a referral from its stored row's columns.
    pub fn insert_referral(
        &mut self,
        referral: Uuid,
        issued: NaiveDate,
        expires: NaiveDate,
        diagnoses: Vec<String>,
    ) {
        self.referrals.insert(
            referral,
            Ok(Referral {
                issued,
                expires,
                diagnoses,
            }),
        );
    }

    /// Of `clinics`, those not cached yet: the store loads their rows with [`Self::insert_clinic`].
    pub fn missing_clinics(&self, clinics: &HashSet<Uuid>) -> Vec<Uuid> {
        clinics
            .iter()
            .filter(|id| !self.clinics.contains_key(id))
            .copied()
            .collect()
    }

    /// Of `therapists`, those not cached yet.
    pub fn missing_therapists(&self, therapists: &HashSet<Uuid>) -> Vec<Uuid> {
        therapists
            .iter()
            .filter(|id| !self.therapists.contains_key(id))
            .copied()
            .collect()
    }

    /// Caches a clinic from its stored row's columns, or the reason they are unusable.
    pub fn insert_clinic(
        &mut self,
        clinic: Uuid,
        npi: &str,
        tax_id: &str,
        time_zone: &str,
        place_of_service: &str,
    ) {
        self.clinics.insert(
            clinic,
            clinic_profile(npi, tax_id, time_zone, place_of_service),
        );
    }

    /// Caches a therapist from its stored NPI, or the reason it is unusable.
    pub fn insert_therapist(&mut self, therapist: Uuid, npi: &str) {
        self.therapists.insert(therapist, therapist_npi(npi));
    }

    /// The directory of the clinics and therapists registered by `items` (a whole log or a chain's
    /// part of it), for readers that derive claims without a read-model schema.
    pub fn from_log(items: &[ReplayItem]) -> Directory {
        let mut directory = Directory::default();
        directory.absorb(items);
        directory
    }

    /// Caches the clinics and therapists registered by `items`: a batch's own registrations, taken in
    /// before its sessions are folded.
    pub fn absorb(&mut self, items: &[ReplayItem]) {
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
                    Event::ReferralRecorded(referral) => {
                        let dates = from_epoch_day(referral.issued_on)
                            .and_then(|issued| Ok((issued, from_epoch_day(referral.expires_on)?)));
                        self.referrals.insert(
                            id,
                            dates
                                .map(|(issued, expires)| Referral {
                                    issued,
                                    expires,
                                    diagnoses: referral
                                        .diagnoses
                                        .iter()
                                        .map(|code| code.as_str().to_owned())
                                        .collect(),
                                })
                                .map_err(|error| format!("referrals.issued_on: {error}")),
                        );
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
