//! A deterministic clinic workload on the log: one chain with one clinic and its therapists
//! registered on the log, the repository's payer rules published as `RulesChanged`, and visits of about
//! six commits each (some self-pay, some cancelled, some amended and completed again).
//!
//! Part of the harness, so the projector's and replay's tests and the projector's benchmarks share
//! one generator.

use std::ops::Range;
use std::path::PathBuf;

use anyhow::Context as _;
use claimledger_billing::validation::npi_check_digit;
use claimledger_events::reference::{
    ClinicRegistered, CoverageRecorded, PatientRegistered, PayerRegistered, ReferralRecorded,
    TherapistRegistered,
};
use claimledger_events::session::{
    BodyRegion, BodySide, Coverage, DiagnosesAttached, ServiceRecorded, SessionAmended,
    SessionCancelled, SessionScheduled, Technique,
};
use claimledger_events::{
    Actor, ActorKind, AggregateId, AggregateKind, ChainId, ClinicId, Commit, CptCode, EpochDay,
    Event, EventRecord, Icd10Code, PatientId, PayerId, TherapistId, UtcMicros,
};
use claimledger_log::{AggregateAddress, EventLog};
use claimledger_payer_rules::load_dir;
use claimledger_payer_rules::publish::{payer_id, publish};
use futures::StreamExt as _;
use sqlx::PgPool;
use uuid::Uuid;

/// The payers visits are billed to, by rules-file identifier.
pub const PAYERS: [&str; 4] = [
    "medicare-like",
    "lakeshore-mutual",
    "evergreen-massage-ppo",
    "summit-workers-comp",
];

/// A proposed second version of Lakeshore Mutual's rules, as a `[[versions]]` table: from
/// 2025-08-01 it stops covering 97140 and pays 97124 at $40.00 instead of $31.00. Tests of
/// re-pricing and of what-if replay share it, so that both describe the same change.
pub const LAKESHORE_V2_VERSION: &str = r#"
[[versions]]
version = 2
effective_from = 2025-08-01
unit_method = "ama_per_code"
accepted_codes = ["97110", "97112", "97124", "97530"]
distinct_procedure_modifiers = "x_modifiers"
enforce_ncci_edits = true
one_massage_or_manual_code_per_visit = false
timely_filing_days = 90

[versions.fee_schedule]
"97110" = 3200
"97112" = 3350
"97124" = 4000
"97530" = 3600
"#;

/// A copy of the repository's rules directory with `versions` (`[[versions]]` tables) appended to
/// Lakeshore Mutual's file: a proposal for `claimledger replay`, or rules to publish.
pub fn rules_dir_with_lakeshore(versions: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("claimledger-rules-{}", Uuid::new_v4()));
    copy_dir(&rules_dir(), &dir)?;
    let file = dir.join("lakeshore-mutual.toml");
    let mut text = std::fs::read_to_string(&file)?;
    text.push_str(versions);
    std::fs::write(&file, text)?;
    Ok(dir)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// [`LAKESHORE_V2_VERSION`] as a published rules document (the payer's header and the version).
pub fn lakeshore_v2_published() -> String {
    format!(
        "payer = \"lakeshore-mutual\"\nname = \"Lakeshore Mutual (commercial)\"\n{LAKESHORE_V2_VERSION}"
    )
}

/// The repository's rules directory.
pub fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules"))
}

/// One chain's fixed ids.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The tenant.
    pub chain: ChainId,
    /// Its one clinic.
    pub clinic: ClinicId,
    /// Its therapists.
    pub therapists: Vec<TherapistId>,
    /// How visits are spread over the days (see [`VisitDays`]).
    pub days: VisitDays,
}

/// How many days from June 2025 a workload's visits are spread over: about 13 months, so that
/// both rule versions of every payer are used.
pub const VISIT_DAYS: u64 = 400;

/// How a workload's visits are spread over the [`VISIT_DAYS`] days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitDays {
    /// Visit i on day i mod [`VISIT_DAYS`]: a handful of visits already spans every rule version. Each stretch
    /// of the log touches every day's unit totals, the worst case for the projector's totals.
    RoundRobin,
    /// In date order, this many visits a day, as a chain's log grows: a stretch of the log touches
    /// the totals of a day or two.
    #[allow(
        dead_code,
        reason = "the replay bench, which shares this file, builds its log this way"
    )]
    Dated { visits_per_day: u64 },
}

impl VisitDays {
    /// The day (0 to [`VISIT_DAYS`] - 1) of visit `index`.
    fn day_of(self, index: u64) -> u64 {
        match self {
            VisitDays::RoundRobin => index % VISIT_DAYS,
            VisitDays::Dated { visits_per_day } => (index / visits_per_day.max(1)) % VISIT_DAYS,
        }
    }
}

impl Default for Workload {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload {
    /// A chain with fresh ids, one clinic and three therapists.
    pub fn new() -> Self {
        Self {
            chain: Uuid::new_v4().into(),
            clinic: Uuid::new_v4().into(),
            therapists: (0..3).map(|_| Uuid::new_v4().into()).collect(),
            days: VisitDays::RoundRobin,
        }
    }

    /// Inserts the chain into the sessions API's `chains` table (API keys hang off it).
    pub async fn seed_directory(&self, db: &PgPool) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO chains (id, name) VALUES ($1, 'Test chain')")
            .bind(self.chain.as_uuid())
            .execute(db)
            .await
            .context("inserting the chain")?;
        Ok(())
    }

    /// Registers the clinic and the therapists on the log, as the sessions API does; the
    /// projector's provider directory is built from these events.
    pub async fn record_directory(&self, log: &EventLog) -> anyhow::Result<()> {
        let clinic = ClinicRegistered {
            name: "Downtown".to_owned(),
            npi: "1234567893".to_owned(),
            tax_id: "12-3456789".to_owned(),
            address_line: "1 Main St".to_owned(),
            city: "Portland".to_owned(),
            state: "OR".to_owned(),
            postal_code: "97201".to_owned(),
            time_zone: "America/Los_Angeles".to_owned(),
            place_of_service: "11".to_owned(),
        };
        self.register(
            log,
            AggregateKind::Clinic,
            self.clinic.into(),
            Event::ClinicRegistered(clinic),
        )
        .await?;
        for (index, therapist) in self.therapists.iter().enumerate() {
            let registered = TherapistRegistered {
                name: format!("Therapist {index}"),
                npi: npi(100_000_000 + index as u32 * 7919),
                licence_number: format!("LMT-{index}"),
                licence_state: "OR".to_owned(),
            };
            self.register(
                log,
                AggregateKind::Therapist,
                (*therapist).into(),
                Event::TherapistRegistered(registered),
            )
            .await?;
        }
        for rules_key in PAYERS {
            let payer = payer_id(rules_key);
            let registered = PayerRegistered {
                name: rules_key.replace('-', " "),
                rules_key: rules_key.to_owned(),
            };
            self.register(
                log,
                AggregateKind::Payer,
                payer.as_uuid().into(),
                Event::PayerRegistered(registered),
            )
            .await?;
        }
        // The first visit's patient, with a coverage and a referral, so every reference table of
        // the read models has rows to compare.
        let patient: PatientId = Uuid::from_u64_pair(9, 0).into();
        self.register(
            log,
            AggregateKind::Patient,
            patient.into(),
            Event::PatientRegistered(PatientRegistered {}),
        )
        .await?;
        let coverage = CoverageRecorded {
            patient,
            payer: payer_of(0),
            valid_from: EpochDay(20_000),
            valid_to: None,
        };
        self.register(
            log,
            AggregateKind::Coverage,
            Uuid::from_u64_pair(7, 0).into(),
            Event::CoverageRecorded(coverage),
        )
        .await?;
        let referral = ReferralRecorded {
            patient,
            referring_npi: "1234567893".to_owned(),
            diagnoses: vec![Icd10Code::new("M54.50").context("a valid code")?],
            authorised_visits: 12,
            issued_on: EpochDay(20_000),
            expires_on: EpochDay(20_400),
        };
        self.register(
            log,
            AggregateKind::Referral,
            Uuid::from_u64_pair(8, 0).into(),
            Event::ReferralRecorded(referral),
        )
        .await?;
        Ok(())
    }

    /// Appends one reference event as a new chain-wide aggregate.
    pub async fn register(
        &self,
        log: &EventLog,
        kind: AggregateKind,
        id: AggregateId,
        event: Event,
    ) -> anyhow::Result<()> {
        let address = AggregateAddress {
            chain: self.chain,
            clinic: None,
            kind,
            id,
        };
        let commit = Commit {
            command_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, id.as_bytes()).into(),
            chain: self.chain,
            clinic: None,
            aggregate_kind: kind,
            aggregate_id: id,
            recorded_at: now(),
            actor: Actor {
                kind: ActorKind::Staff,
                id: "workload".to_owned(),
            },
            correlation_id: Uuid::new_v4().into(),
            causation_id: None,
            events: vec![EventRecord {
                event_id: Uuid::new_v4().into(),
                occurred_at: now(),
                event,
            }],
        };
        log.append(&address, 0, &commit)
            .await
            .with_context(|| format!("registering {} {id}", kind.subject_token()))?;
        Ok(())
    }

    /// Publishes the repository's payer rules for this chain, as the payer-rules service does.
    pub async fn publish_rules(&self, log: &EventLog) -> anyhow::Result<()> {
        let book = load_dir(&rules_dir()).context("loading the repository's rules")?;
        publish(log, self.chain, &book, now())
            .await
            .context("publishing the rules")?;
        Ok(())
    }

    /// The session aggregate of visit `index`.
    pub fn session(&self, index: u64) -> AggregateAddress {
        AggregateAddress {
            chain: self.chain,
            clinic: Some(self.clinic),
            kind: AggregateKind::Session,
            id: Uuid::from_u64_pair(self.chain.as_uuid().as_u64_pair().0, index).into(),
        }
    }

    /// The commits of visit `index`, in order.
    pub fn visit_commits(&self, index: u64) -> Vec<Commit> {
        let session = self.session(index);
        let therapist = self.therapists[(index % self.therapists.len() as u64) as usize];
        let coverage = if index % 5 == 4 {
            Coverage::SelfPay
        } else {
            Coverage::Payer {
                payer: payer_of(index),
                coverage: Uuid::from_u64_pair(7, index).into(),
            }
        };
        let day = self.days.day_of(index) as i64;
        let start = UtcMicros(DAY_2025_06_01_17_00_UTC + day * MICROS_PER_DAY);
        let mut events = vec![Event::SessionScheduled(SessionScheduled {
            therapist,
            patient: Uuid::from_u64_pair(9, index).into(),
            coverage,
            referral: None,
            scheduled_start: start,
            planned_minutes: 60,
        })];
        let mut commits = Vec::new();
        if index % 7 == 3 {
            events.push(Event::SessionCancelled(SessionCancelled {
                reason: "patient called in sick".to_owned(),
            }));
            for event in events {
                commits.push(commit(&session, event));
            }
            return commits;
        }
        let minutes = 8 + (index % 4) as u16 * 7;
        events.push(Event::CheckedIn);
        events.push(service(
            Technique::SoftTissueMobilisation,
            "97140",
            minutes,
            BodyRegion::Neck,
        ));
        events.push(service(
            Technique::Swedish,
            "97124",
            38 - minutes.min(30),
            BodyRegion::LowerBack,
        ));
        events.push(Event::DiagnosesAttached(DiagnosesAttached {
            icd10_codes: vec![
                Icd10Code::new("M54.50").expect("a valid ICD-10 code"),
                Icd10Code::new("M62.830").expect("a valid ICD-10 code"),
            ],
        }));
        events.push(Event::SessionCompleted);
        if index % 11 == 5 {
            events.push(Event::SessionAmended(SessionAmended {
                reason: "exercise not recorded".to_owned(),
            }));
            events.push(service(
                Technique::TherapeuticExercise,
                "97110",
                15,
                BodyRegion::Shoulder,
            ));
            events.push(Event::SessionCompleted);
        }
        for event in events {
            commits.push(commit(&session, event));
        }
        commits
    }

    /// Appends visits `range`, `concurrency` sessions at a time; returns the events appended.
    pub async fn append_visits(
        &self,
        log: &EventLog,
        range: Range<u64>,
        concurrency: usize,
    ) -> anyhow::Result<u64> {
        let appended = futures::stream::iter(range)
            .map(|index| async move {
                let session = self.session(index);
                let mut version = 0;
                let mut events = 0_u64;
                for commit in self.visit_commits(index) {
                    events += commit.events.len() as u64;
                    version = log.append(&session, version, &commit).await?.sequence;
                }
                anyhow::Ok(events)
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<_>>()
            .await;
        appended.into_iter().sum()
    }
}

/// The payer of visit `index` (for visits that are not self-pay).
pub fn payer_of(index: u64) -> PayerId {
    payer_id(PAYERS[(index % PAYERS.len() as u64) as usize])
}

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// 2025-06-01T17:00:00Z.
const DAY_2025_06_01_17_00_UTC: i64 = 1_748_797_200_000_000;

fn service(technique: Technique, code: &str, minutes: u16, region: BodyRegion) -> Event {
    Event::ServiceRecorded(ServiceRecorded {
        technique,
        cpt_code: CptCode::new(code).expect("a valid CPT code"),
        minutes,
        body_region: region,
        body_side: Some(BodySide::Bilateral),
        description: None,
    })
}

fn commit(session: &AggregateAddress, event: Event) -> Commit {
    crate::commits::commit_for(session, vec![event])
}

/// The current time as the log stores it.
pub fn now() -> UtcMicros {
    crate::commits::now()
}

/// A valid NPI from a nine-digit base.
fn npi(base: u32) -> String {
    let digits: [u8; 9] = std::array::from_fn(|index| {
        let shift = 10_u32.pow(8 - index as u32);
        ((base / shift) % 10) as u8
    });
    format!("{base:09}{}", npi_check_digit(&digits))
}
