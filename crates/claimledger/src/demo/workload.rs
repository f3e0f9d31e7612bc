//! The demo's workload generator: a synthetic franchise chain (clinics across states and time zones,
//! two therapists each, patients with coverages and referrals, the example payers) and its visits,
//! recorded through the public API. Seeded and deterministic: the same flags record the same visits.

use anyhow::Context;
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::DemoArgs;
use super::api::Api;

/// SplitMix64: a tiny, well-known generator, so the workload is the same on every machine and
/// every version of every dependency.
struct Workload(u64);

impl Workload {
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

/// An NPI (ten digits, Luhn check over the 80840 prefix) for a synthetic provider.
fn synthetic_npi(serial: u32) -> String {
    let base = format!("1{:08}", serial % 100_000_000);
    let digits: [u8; 9] = std::array::from_fn(|index| base.as_bytes()[index] - b'0');
    format!(
        "{base}{}",
        claimledger_billing::validation::npi_check_digit(&digits)
    )
}

pub(super) async fn record_chain(
    api: &Api,
    front_desk: &Api,
    args: &DemoArgs,
    payer_keys: &[String],
) -> anyhow::Result<Recorded> {
    let mut rng = Workload(args.seed);
    let mut recorded = Recorded::default();
    let today = Utc::now().date_naive();
    let first_day = today - Days::new(u64::from(args.days));

    let mut payers = Vec::new();
    for key in payer_keys {
        payers.push(
            api.create("/v1/payers", &json!({"name": key, "rules_key": key}))
                .await?,
        );
        recorded.requests += 1;
    }

    let progress = ProgressBar::new(u64::from(args.clinics * args.days * args.visits_per_day))
        .with_style(ProgressStyle::with_template(
            "recording visits {bar:40} {pos}/{len} ({per_sec}, eta {eta})",
        )?);
    for clinic_number in 0..args.clinics {
        let (city, state, postal_code, time_zone) = CITIES[clinic_number as usize % CITIES.len()];
        let clinic = api
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
        let tz: chrono_tz::Tz = time_zone.parse().map_err(anyhow::Error::msg)?;
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
        // Each patient has one coverage and a referral valid for the whole period.
        let mut patients = Vec::new();
        for patient_number in 0..12 {
            let patient = api
                .create(
                    "/v1/patients",
                    &json!({"given_name": format!("Patient{patient_number}"), "family_name": city,
                            "date_of_birth": format!("19{}-0{}-1{}", 50 + rng.below(45), 1 + rng.below(9), rng.below(10))}),
                )
                .await?;
            let payer = rng.pick(&payers).clone();
            let coverage = api
                .create(
                    "/v1/coverages",
                    &json!({"patient_id": patient, "payer_id": payer,
                            "member_id": format!("M{:09}", rng.below(1_000_000_000)),
                            "valid_from": first_day - Days::new(30), "valid_to": today + Days::new(365)}),
                )
                .await?;
            let diagnosis = *rng.pick(&DIAGNOSES);
            let referral = api
                .create(
                    "/v1/referrals",
                    &json!({"patient_id": patient, "referring_npi": synthetic_npi(9_000_000 + clinic_number),
                            "diagnoses": [diagnosis], "authorised_visits": 200,
                            "issued_on": first_day - Days::new(7), "expires_on": today + Days::new(180)}),
                )
                .await?;
            recorded.requests += 3;
            patients.push((patient, payer, coverage, referral, diagnosis));
        }
        recorded.requests += 3;

        for day_offset in 0..args.days {
            let day = first_day + Days::new(u64::from(day_offset));
            for slot in 0..args.visits_per_day {
                let therapist = &therapists[(slot % 2) as usize];
                let (patient, payer, coverage, referral, diagnosis) = rng.pick(&patients).clone();
                // Two therapists alternate; each starts a visit every two hours from 08:00, so even a
                // 90-minute visit ends before the therapist's next one.
                let start = local_start(tz, day, 8 + (slot / 2) * 2)?;
                let visit = VisitPlan {
                    clinic: &clinic,
                    therapist,
                    patient: &patient,
                    payer: &payer,
                    coverage: &coverage,
                    referral: &referral,
                    diagnosis,
                    start,
                };
                record_visit(front_desk, &mut rng, &visit, &mut recorded).await?;
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
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

/// One booked visit.
struct VisitPlan<'a> {
    clinic: &'a str,
    therapist: &'a str,
    patient: &'a str,
    payer: &'a str,
    coverage: &'a str,
    referral: &'a str,
    diagnosis: &'a str,
    start: DateTime<Utc>,
}

/// Books the visit and records what happened: a no-show, a cancellation, or the services,
/// modalities and diagnoses of a completed visit.
async fn record_visit(
    api: &Api,
    rng: &mut Workload,
    visit: &VisitPlan<'_>,
    recorded: &mut Recorded,
) -> anyhow::Result<()> {
    let planned_minutes: u16 = *rng.pick(&[30, 45, 60, 60, 90]);
    let session = api
        .create(
            "/v1/sessions",
            &json!({
                "clinic_id": visit.clinic, "therapist_id": visit.therapist, "patient_id": visit.patient,
                "payment": {"kind": "payer", "payer_id": visit.payer, "coverage_id": visit.coverage},
                "referral_id": visit.referral, "scheduled_start": visit.start, "planned_minutes": planned_minutes
            }),
        )
        .await?;
    recorded.visits += 1;
    recorded.requests += 1;
    let path = |action: &str| format!("/v1/sessions/{session}/{action}");
    let outcome = rng.below(100);
    if outcome < 6 {
        api.post(&path("no-show"), &json!({})).await?;
        recorded.no_shows += 1;
        recorded.requests += 1;
        return Ok(());
    }
    if outcome < 11 {
        api.post(
            &path("cancel"),
            &json!({"reason": "patient called to cancel"}),
        )
        .await?;
        recorded.cancelled += 1;
        recorded.requests += 1;
        return Ok(());
    }
    api.post(&path("check-in"), &json!({})).await?;
    recorded.requests += 1;

    // One to three services that fit in the booked time, most visits led by massage or manual
    // therapy, as in a massage clinic.
    let mut minutes_left = planned_minutes;
    for _ in 0..1 + rng.below(3) {
        let (technique, code, low, high, region) = *rng.pick(&SERVICES);
        let minutes = (low + rng.below(u64::from(high - low + 1)) as u16).min(minutes_left);
        if minutes < 8 {
            break;
        }
        api.post(
            &path("services"),
            &json!({"technique": technique, "code": code, "minutes": minutes, "body_region": region}),
        )
        .await?;
        recorded.requests += 1;
        minutes_left -= minutes;
    }
    if rng.chance(30) {
        api.post(
            &path("modalities"),
            &json!({"code": "97010", "minutes": 10}),
        )
        .await?;
        recorded.requests += 1;
    }
    api.post(&path("diagnoses"), &json!({"codes": [visit.diagnosis]}))
        .await?;
    api.post(&path("complete"), &json!({})).await?;
    recorded.requests += 2;
    recorded.completed += 1;

    // Corrections after completion are amendments: new events, nothing rewritten. A few visits
    // had a hot pack that was not charted; a few more had a service documented only after the
    // visit was closed (a late note).
    if minutes_left >= 10 && rng.chance(4) {
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
    } else if minutes_left >= 8 && rng.chance(3) {
        let (technique, code, _, _, region) = *rng.pick(&SERVICES);
        api.post(
            &path("amend"),
            &json!({"reason": "late note: service documented after the visit"}),
        )
        .await?;
        api.post(
            &path("services"),
            &json!({"technique": technique, "code": code, "minutes": minutes_left.min(15),
                    "body_region": region, "description": "documented after the visit"}),
        )
        .await?;
        api.post(&path("complete"), &json!({})).await?;
        recorded.requests += 3;
        recorded.late_notes += 1;
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
        let first: Vec<u64> = (0..5)
            .map({
                let mut rng = Workload(7);
                move |_| rng.next()
            })
            .collect();
        let again: Vec<u64> = (0..5)
            .map({
                let mut rng = Workload(7);
                move |_| rng.next()
            })
            .collect();
        assert_eq!(first, again);
        assert_ne!(first[0], Workload(8).next());
    }
}
