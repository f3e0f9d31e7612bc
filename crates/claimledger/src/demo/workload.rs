//! The demo's workload generator: a synthetic franchise chain (clinics across states and time zones,
//! two therapists each, patients with coverages and referrals, the example payers) and its visits,
//! recorded through the public API. Seeded and deterministic: the same flags record the same visits.
//!
//! The work is planned in parts: each clinic's set-up, then each day of each clinic. Every part
//! draws from a generator of its own, derived from the seed and the part's coordinates, and its plan
//! is drawn before any of its requests is sent. So what is recorded does not depend on the order
//! in which parts run, and `--concurrency` days can be recorded at once while a visit's own
//! requests stay in order.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::api::Api;
use super::{DemoArgs, in_parallel};

/// SplitMix64: a tiny, well-known generator, so the workload is the same on every machine and
/// every version of every dependency.
struct Workload(u64);

impl Workload {
    /// The generator of one part of the workload (a clinic's set-up, one day of a clinic), derived
    /// from the seed and the part's coordinates: a part draws the same numbers whichever parts ran
    /// before it. Each coordinate is mixed in through SplitMix64's output function, so neighbouring
    /// parts do not get shifted copies of one stream.
    fn for_part(seed: u64, part: &[u64]) -> Workload {
        let mut state = Workload(seed).next();
        for &coordinate in part {
            state = Workload(state ^ coordinate).next();
        }
        Workload(state)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The first coordinate of a clinic's part; the second is [`SET_UP`] or `DAY_0 + day`.
const SET_UP: u64 = 0;
const DAY_0: u64 = 1;

/// Cities the synthetic chain has clinics in, across time zones.
const CITIES: [(&str, &str, &str, &str); 8] = [
    ("Brooklyn", "NY", "11201", "America/New_York"),
    ("Chicago", "IL", "60601", "America/Chicago"),
    ("Denver", "CO", "80202", "America/Denver"),
    ("Phoenix", "AZ", "85004", "America/Phoenix"),
    ("Seattle", "WA", "98101", "America/Los_Angeles"),
    ("Miami", "FL", "33130", "America/New_York"),
    ("Austin", "TX", "78701", "America/Chicago"),
    ("Portland", "OR", "97204", "America/Los_Angeles"),
];

/// Diagnoses that support massage and manual therapy (domain.md section 8).
const DIAGNOSES: [&str; 6] = [
    "M54.50", "M62.830", "M54.2", "G44.209", "M79.18", "S13.4XXA",
];

/// What a therapist does in one service: technique, the code that covers it, minutes range, region.
const SERVICES: [(&str, &str, u16, u16, &str); 6] = [
    ("swedish_massage", "97124", 30, 60, "upper_back"),
    ("deep_tissue_massage", "97124", 23, 45, "neck"),
    ("myofascial_release", "97140", 15, 40, "lower_back"),
    ("joint_mobilisation", "97140", 8, 25, "neck"),
    ("strength_exercise", "97110", 8, 20, "lower_back"),
    (
        "proprioceptive_neuromuscular_facilitation",
        "97112",
        8,
        15,
        "shoulder",
    ),
];

/// Patients per clinic, each with one coverage and one referral.
const PATIENTS_PER_CLINIC: usize = 12;

/// Visits each patient's referral authorises: the most the API accepts.
const AUTHORISED_VISITS: u32 = 365;

/// Counts of what was recorded.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    pub(super) visits: u64,
    pub(super) completed: u64,
    pub(super) cancelled: u64,
    pub(super) no_shows: u64,
    /// Completed visits whose record was amended afterwards (a missed modality or service added).
    pub(super) amended: u64,
    /// Completed visits whose services were documented late, in an amendment after completion.
    pub(super) late_notes: u64,
    pub(super) requests: u64,
}

impl Recorded {
    fn add(&mut self, other: &Recorded) {
        self.visits += other.visits;
        self.completed += other.completed;
        self.cancelled += other.cancelled;
        self.no_shows += other.no_shows;
        self.amended += other.amended;
        self.late_notes += other.late_notes;
        self.requests += other.requests;
    }
}

/// An NPI (ten digits, Luhn check over the 80840 prefix) for a synthetic provider.
fn synthetic_npi(serial: u32) -> String {
    let base = format!("1{:08}", serial % 100_000_000);
    let digits: [u8; 9] = std::array::from_fn(|index| base.as_bytes()[index] - b'0');
    format!(
        "{base}{}",
        claimledger_billing::validation::npi_check_digit(&digits)
    )
}

/// One patient of a clinic, as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PatientPlan {
    date_of_birth: String,
    /// Index into the chain's payers.
    payer: usize,
    member_id: String,
    diagnosis: &'static str,
}

/// A clinic's patients, as drawn.
fn plan_patients(seed: u64, clinic_number: u32, payers: usize) -> Vec<PatientPlan> {
    let mut rng = Workload::for_part(seed, &[u64::from(clinic_number), SET_UP]);
    (0..PATIENTS_PER_CLINIC)
        .map(|_| {
            let date_of_birth = format!(
                "19{}-0{}-1{}",
                50 + rng.below(45),
                1 + rng.below(9),
                rng.below(10)
            );
            let payer = rng.below(payers as u64) as usize;
            let member_id = format!("M{:09}", rng.below(1_000_000_000));
            let diagnosis = *rng.pick(&DIAGNOSES);
            PatientPlan {
                date_of_birth,
                payer,
                member_id,
                diagnosis,
            }
        })
        .collect()
}

/// One service as drawn: technique, code, minutes, body region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServicePlan {
    technique: &'static str,
    code: &'static str,
    minutes: u16,
    region: &'static str,
}

/// What happens after a visit's record is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Afterwards {
    Nothing,
    /// A hot pack that was applied but not charted is added in an amendment.
    UnchartedHotPack,
    /// A service documented only after the visit was closed (a late note).
    LateNote(ServicePlan),
}

/// How a booked visit turns out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    NoShow,
    Cancelled,
    Completed {
        services: Vec<ServicePlan>,
        hot_pack: bool,
        afterwards: Afterwards,
    },
}

/// One booked visit, as drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VisitPlan {
    /// The visit's slot of the day: therapist `slot % 2`, starting at `8 + (slot / 2) * 2` o'clock.
    slot: u32,
    /// Index into the clinic's patients.
    patient: usize,
    planned_minutes: u16,
    outcome: Outcome,
}

/// The visits of one day of one clinic, as drawn.
fn plan_day(seed: u64, clinic_number: u32, day_offset: u32, visits_per_day: u32) -> Vec<VisitPlan> {
    let mut rng = Workload::for_part(
        seed,
        &[u64::from(clinic_number), DAY_0 + u64::from(day_offset)],
    );
    (0..visits_per_day)
        .map(|slot| plan_visit(&mut rng, slot))
        .collect()
}

fn plan_visit(rng: &mut Workload, slot: u32) -> VisitPlan {
    let patient = rng.below(PATIENTS_PER_CLINIC as u64) as usize;
    let planned_minutes: u16 = *rng.pick(&[30, 45, 60, 60, 90]);
    let outcome = match rng.below(100) {
        0..6 => Outcome::NoShow,
        6..11 => Outcome::Cancelled,
        _ => {
            // One to three services that fit in the booked time, most visits led by massage or
            // manual therapy, as in a massage clinic.
            let mut minutes_left = planned_minutes;
            let mut services = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let (technique, code, low, high, region) = *rng.pick(&SERVICES);
                let minutes = (low + rng.below(u64::from(high - low + 1)) as u16).min(minutes_left);
                if minutes < 8 {
                    break;
                }
                services.push(ServicePlan {
                    technique,
                    code,
                    minutes,
                    region,
                });
                minutes_left -= minutes;
            }
            let hot_pack = rng.chance(30);
            // Corrections after completion are amendments: new events, nothing rewritten.
            let afterwards = if minutes_left >= 10 && rng.chance(4) {
                Afterwards::UnchartedHotPack
            } else if minutes_left >= 8 && rng.chance(3) {
                let (technique, code, _, _, region) = *rng.pick(&SERVICES);
                Afterwards::LateNote(ServicePlan {
                    technique,
                    code,
                    minutes: minutes_left.min(15),
                    region,
                })
            } else {
                Afterwards::Nothing
            };
            Outcome::Completed {
                services,
                hot_pack,
                afterwards,
            }
        }
    };
    VisitPlan {
        slot,
        patient,
        planned_minutes,
        outcome,
    }
}

/// What every part of the recording shares.
struct Chain {
    admin: Api,
    front_desk: Api,
    /// The payers' ids, in the order of the payer keys.
    payers: Vec<String>,
    seed: u64,
    visits_per_day: u32,
    today: NaiveDate,
    first_day: NaiveDate,
    progress: ProgressBar,
}

/// A registered clinic: its ids, and each patient's ids with the diagnosis of the referral.
struct Clinic {
    id: String,
    time_zone: chrono_tz::Tz,
    therapists: [String; 2],
    patients: Vec<Patient>,
}

struct Patient {
    id: String,
    payer: String,
    coverage: String,
    referral: String,
    diagnosis: &'static str,
}

/// Records the chain: the payers, then every clinic's set-up, then every day of every clinic up to
/// the day before `today`, with up to `args.concurrency` parts in flight.
pub(super) async fn record_chain(
    api: &Api,
    front_desk: &Api,
    args: &DemoArgs,
    payer_keys: &[String],
    today: NaiveDate,
) -> anyhow::Result<Recorded> {
    let mut recorded = Recorded::default();
    let mut payers = Vec::new();
    for key in payer_keys {
        payers.push(
            api.create("/v1/payers", &json!({"name": key, "rules_key": key}))
                .await?,
        );
        recorded.requests += 1;
    }
    let chain = Arc::new(Chain {
        admin: api.clone(),
        front_desk: front_desk.clone(),
        payers,
        seed: args.seed,
        visits_per_day: args.visits_per_day,
        today,
        first_day: today - Days::new(u64::from(args.days)),
        progress: ProgressBar::new(u64::from(args.clinics * args.days * args.visits_per_day))
            .with_style(ProgressStyle::with_template(
                "recording visits {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
            )?),
    });
    let concurrency = usize::try_from(args.concurrency)?;

    let clinic_numbers: Vec<u32> = (0..args.clinics).collect();
    let mut clinics = in_parallel(concurrency, clinic_numbers, {
        let chain = Arc::clone(&chain);
        move |clinic_number| {
            let chain = Arc::clone(&chain);
            async move {
                let clinic = set_up_clinic(&chain, clinic_number).await?;
                Ok((clinic_number, clinic))
            }
        }
    })
    .await?;
    clinics.sort_by_key(|(clinic_number, _)| *clinic_number);
    recorded.requests += clinics.len() as u64 * (3 + 3 * PATIENTS_PER_CLINIC as u64);
    let clinics: Arc<Vec<Clinic>> =
        Arc::new(clinics.into_iter().map(|(_, clinic)| clinic).collect());

    // Day by day across the chain, as the clinics would record them.
    let parts: Vec<(u32, u32)> = (0..args.days)
        .flat_map(|day| (0..args.clinics).map(move |clinic| (clinic, day)))
        .collect();
    let days = in_parallel(concurrency, parts, {
        let chain = Arc::clone(&chain);
        move |(clinic_number, day_offset)| {
            let chain = Arc::clone(&chain);
            let clinics = Arc::clone(&clinics);
            async move {
                record_day(
                    &chain,
                    clinic_number,
                    &clinics[clinic_number as usize],
                    day_offset,
                )
                .await
            }
        }
    })
    .await?;
    for day in &days {
        recorded.add(day);
    }
    chain.progress.finish_and_clear();
    Ok(recorded)
}

/// Registers a clinic, its two therapists, and its patients with their coverages and referrals.
async fn set_up_clinic(chain: &Chain, clinic_number: u32) -> anyhow::Result<Clinic> {
    let api = &chain.admin;
    let (city, state, postal_code, time_zone) = CITIES[clinic_number as usize % CITIES.len()];
    let id = api
        .create(
            "/v1/clinics",
            &json!({
                "name": format!("{city} #{}", clinic_number + 1), "npi": synthetic_npi(clinic_number * 10),
                "tax_id": format!("{:02}-{:07}", 10 + clinic_number % 80, 1_000_000 + clinic_number),
                "address_line": format!("{} Main St", 100 + clinic_number), "city": city, "state": state,
                "postal_code": postal_code, "time_zone": time_zone, "place_of_service": "11"
            }),
        )
        .await?;
    let mut therapists = Vec::new();
    for therapist_number in 0..2 {
        therapists.push(
            api.create(
                "/v1/therapists",
                &json!({
                    "name": format!("Therapist {}-{}", clinic_number + 1, therapist_number + 1),
                    "npi": synthetic_npi(clinic_number * 10 + therapist_number + 1),
                    "licence_number": format!("MT-{clinic_number}-{therapist_number}"),
                    "licence_state": state
                }),
            )
            .await?,
        );
    }
    // Each patient has one coverage and a referral valid for the whole period. The referral
    // authorises the most visits the API allows (365): a patient of the longest run books about
    // 366 days x 8 visits / 12 patients = 244 visits on average and rarely more than 300, while
    // 200 would refuse some bookings in a year-long run.
    let mut patients = Vec::new();
    for (patient_number, plan) in plan_patients(chain.seed, clinic_number, chain.payers.len())
        .into_iter()
        .enumerate()
    {
        let patient = api
            .create(
                "/v1/patients",
                &json!({"given_name": format!("Patient{patient_number}"), "family_name": city,
                        "date_of_birth": plan.date_of_birth}),
            )
            .await?;
        let payer = chain.payers[plan.payer].clone();
        let coverage = api
            .create(
                "/v1/coverages",
                &json!({"patient_id": patient, "payer_id": payer, "member_id": plan.member_id,
                        "valid_from": chain.first_day - Days::new(30), "valid_to": chain.today + Days::new(365)}),
            )
            .await?;
        let referral = api
            .create(
                "/v1/referrals",
                &json!({"patient_id": patient, "referring_npi": synthetic_npi(9_000_000 + clinic_number),
                        "diagnoses": [plan.diagnosis], "authorised_visits": AUTHORISED_VISITS,
                        "issued_on": chain.first_day - Days::new(7), "expires_on": chain.today + Days::new(180)}),
            )
            .await?;
        patients.push(Patient {
            id: patient,
            payer,
            coverage,
            referral,
            diagnosis: plan.diagnosis,
        });
    }
    Ok(Clinic {
        id,
        time_zone: time_zone.parse().map_err(anyhow::Error::msg)?,
        therapists: therapists
            .try_into()
            .map_err(|_| anyhow::anyhow!("two therapists"))?,
        patients,
    })
}

/// Records one day of one clinic, visit after visit.
async fn record_day(
    chain: &Chain,
    clinic_number: u32,
    clinic: &Clinic,
    day_offset: u32,
) -> anyhow::Result<Recorded> {
    let day = chain.first_day + Days::new(u64::from(day_offset));
    let mut recorded = Recorded::default();
    for plan in plan_day(chain.seed, clinic_number, day_offset, chain.visits_per_day) {
        // Two therapists alternate; each starts a visit every two hours from 08:00, so even a
        // 90-minute visit ends before the therapist's next one.
        let start = local_start(clinic.time_zone, day, 8 + (plan.slot / 2) * 2)?;
        record_visit(&chain.front_desk, clinic, start, &plan, &mut recorded).await?;
        chain.progress.inc(1);
    }
    Ok(recorded)
}

/// The UTC instant of `hour`:00 on `day` in the clinic's time zone.
fn local_start(tz: chrono_tz::Tz, day: NaiveDate, hour: u32) -> anyhow::Result<DateTime<Utc>> {
    let local = day
        .and_hms_opt(hour, 0, 0)
        .context("a valid hour of the day")?;
    Ok(tz
        .from_local_datetime(&local)
        .earliest()
        .context("a local time that exists in the clinic's time zone")?
        .with_timezone(&Utc))
}

/// Books the visit and records what happened: a no-show, a cancellation, or the services,
/// modalities and diagnoses of a completed visit.
async fn record_visit(
    api: &Api,
    clinic: &Clinic,
    start: DateTime<Utc>,
    plan: &VisitPlan,
    recorded: &mut Recorded,
) -> anyhow::Result<()> {
    let patient = &clinic.patients[plan.patient];
    let session = api
        .create(
            "/v1/sessions",
            &json!({
                "clinic_id": clinic.id, "therapist_id": clinic.therapists[(plan.slot % 2) as usize],
                "patient_id": patient.id,
                "payment": {"kind": "payer", "payer_id": patient.payer, "coverage_id": patient.coverage},
                "referral_id": patient.referral, "scheduled_start": start, "planned_minutes": plan.planned_minutes
            }),
        )
        .await?;
    recorded.visits += 1;
    recorded.requests += 1;
    let path = |action: &str| format!("/v1/sessions/{session}/{action}");
    let (services, hot_pack, afterwards) = match &plan.outcome {
        Outcome::NoShow => {
            api.post(&path("no-show"), &json!({})).await?;
            recorded.no_shows += 1;
            recorded.requests += 1;
            return Ok(());
        }
        Outcome::Cancelled => {
            api.post(
                &path("cancel"),
                &json!({"reason": "patient called to cancel"}),
            )
            .await?;
            recorded.cancelled += 1;
            recorded.requests += 1;
            return Ok(());
        }
        Outcome::Completed {
            services,
            hot_pack,
            afterwards,
        } => (services, *hot_pack, *afterwards),
    };
    api.post(&path("check-in"), &json!({})).await?;
    recorded.requests += 1;
    for service in services {
        api.post(
            &path("services"),
            &json!({"technique": service.technique, "code": service.code,
                    "minutes": service.minutes, "body_region": service.region}),
        )
        .await?;
        recorded.requests += 1;
    }
    if hot_pack {
        api.post(
            &path("modalities"),
            &json!({"code": "97010", "minutes": 10}),
        )
        .await?;
        recorded.requests += 1;
    }
    api.post(&path("diagnoses"), &json!({"codes": [patient.diagnosis]}))
        .await?;
    api.post(&path("complete"), &json!({})).await?;
    recorded.requests += 2;
    recorded.completed += 1;

    match afterwards {
        Afterwards::Nothing => {}
        Afterwards::UnchartedHotPack => {
            api.post(
                &path("amend"),
                &json!({"reason": "hot pack applied but not charted"}),
            )
            .await?;
            api.post(
                &path("modalities"),
                &json!({"code": "97010", "minutes": 10}),
            )
            .await?;
            api.post(&path("complete"), &json!({})).await?;
            recorded.requests += 3;
            recorded.amended += 1;
        }
        Afterwards::LateNote(service) => {
            api.post(
                &path("amend"),
                &json!({"reason": "late note: service documented after the visit"}),
            )
            .await?;
            api.post(
                &path("services"),
                &json!({"technique": service.technique, "code": service.code, "minutes": service.minutes,
                        "body_region": service.region, "description": "documented after the visit"}),
            )
            .await?;
            api.post(&path("complete"), &json!({})).await?;
            recorded.requests += 3;
            recorded.late_notes += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_npis_pass_the_billing_core_check() {
        for serial in [0, 1, 10, 99_999_999] {
            let npi = synthetic_npi(serial);
            assert!(
                claimledger_billing::validation::Npi::parse("npi", &npi).is_ok(),
                "{npi}"
            );
        }
    }

    #[test]
    fn the_workload_is_deterministic_for_a_seed() {
        let draws = |seed: u64, part: &[u64]| -> Vec<u64> {
            let mut rng = Workload::for_part(seed, part);
            (0..5).map(|_| rng.next()).collect()
        };
        assert_eq!(draws(7, &[3, DAY_0 + 5]), draws(7, &[3, DAY_0 + 5]));
        assert_ne!(draws(7, &[3, DAY_0 + 5]), draws(8, &[3, DAY_0 + 5]));
        // Every part of a chain draws its own numbers: clinics, days, and set-up versus day 0.
        let mut firsts: Vec<u64> = (0..50)
            .flat_map(|clinic| (0..20).map(move |part| draws(7, &[clinic, part])[0]))
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(firsts.len(), 50 * 20);
    }

    #[test]
    fn a_clinics_plan_does_not_depend_on_which_parts_were_planned_before_it() {
        let alone = (plan_patients(7, 3, 6), plan_day(7, 3, 10, 6));
        // Plan the chain in two different orders, as two schedules of the workers would.
        let forwards: Vec<_> = (0..5)
            .flat_map(|clinic| (0..12).map(move |day| (clinic, day)))
            .map(|(clinic, day)| ((clinic, day), plan_day(7, clinic, day, 6)))
            .collect();
        let backwards: Vec<_> = (0..5)
            .rev()
            .flat_map(|clinic| (0..12).rev().map(move |day| (clinic, day)))
            .map(|(clinic, day)| ((clinic, day), plan_day(7, clinic, day, 6)))
            .collect();
        let find = |plans: &[((u32, u32), Vec<VisitPlan>)]| {
            plans
                .iter()
                .find(|(part, _)| *part == (3, 10))
                .map(|(_, plan)| plan.clone())
        };
        assert_eq!(find(&forwards), Some(alone.1.clone()));
        assert_eq!(find(&backwards), Some(alone.1.clone()));
        assert_eq!(plan_patients(7, 3, 6), alone.0);
        // Different days and clinics draw different visits.
        assert_ne!(plan_day(7, 3, 11, 6), alone.1);
        assert_ne!(plan_day(7, 4, 10, 6), alone.1);
    }

    #[test]
    fn a_planned_visit_fits_its_booked_time_and_its_therapists_slots() {
        for day in 0..200 {
            for visit in plan_day(7, 1, day, 8) {
                assert!(visit.slot < 8 && visit.patient < PATIENTS_PER_CLINIC);
                if let Outcome::Completed {
                    services,
                    afterwards,
                    ..
                } = &visit.outcome
                {
                    let recorded: u16 = services.iter().map(|service| service.minutes).sum();
                    let late = match afterwards {
                        Afterwards::LateNote(service) => service.minutes,
                        _ => 0,
                    };
                    assert!(recorded + late <= visit.planned_minutes, "{visit:?}");
                    assert!(services.iter().all(|service| service.minutes >= 8));
                }
            }
        }
    }
}
