//! Read-model rows for reporting tests and the benchmark: a chain's clinics and payers, claims and
//! their line outcomes, and the monthly rollups computed here, in Rust, from the same lines (an
//! independent computation, so comparing the rollups with the line-level query checks both).
//! Everything is written with COPY. `generate` builds a seeded synthetic chain of any size.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use sqlx::PgPool;
use uuid::Uuid;

/// A clinic of the fixture chain.
#[derive(Debug, Clone)]
pub struct Clinic {
    pub id: Uuid,
    pub name: String,
    pub state: String,
}

/// A payer of the fixture chain.
#[derive(Debug, Clone)]
pub struct Payer {
    pub id: Uuid,
    pub name: String,
}

/// A remittance for one line.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub adjudicated_on: NaiveDate,
    pub allowed_cents: i64,
    pub paid_cents: i64,
    pub patient_responsibility_cents: i64,
    pub paid_units: i32,
    /// (group code, CARC, amount in cents).
    pub adjustments: Vec<(&'static str, &'static str, i64)>,
}

/// One claim line as the read models hold it.
#[derive(Debug, Clone)]
pub struct Line {
    pub clinic: Uuid,
    pub payer: Uuid,
    pub date_of_service: NaiveDate,
    pub code: &'static str,
    pub units: i32,
    pub charge_cents: i64,
    pub outcome: Option<Outcome>,
}

impl Line {
    /// A line billed and not yet adjudicated.
    pub fn billed(
        clinic: &Clinic,
        payer: &Payer,
        date_of_service: NaiveDate,
        code: &'static str,
        units: i32,
        charge_cents: i64,
    ) -> Line {
        Line {
            clinic: clinic.id,
            payer: payer.id,
            date_of_service,
            code,
            units,
            charge_cents,
            outcome: None,
        }
    }

    /// Paid `paid_cents` after `days`, the rest of the charge adjusted as CO-45 (contractual).
    pub fn paid(mut self, paid_cents: i64, days: i64) -> Line {
        self.outcome = Some(Outcome {
            adjudicated_on: self.date_of_service + Duration::days(days),
            allowed_cents: paid_cents,
            paid_cents,
            patient_responsibility_cents: 0,
            paid_units: self.units,
            adjustments: vec![("CO", "45", self.charge_cents - paid_cents)],
        });
        self
    }

    /// Denied after `days` with `group`-`reason` for the whole charge.
    pub fn denied(mut self, group: &'static str, reason: &'static str, days: i64) -> Line {
        self.outcome = Some(Outcome {
            adjudicated_on: self.date_of_service + Duration::days(days),
            allowed_cents: 0,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            paid_units: 0,
            adjustments: vec![(group, reason, self.charge_cents)],
        });
        self
    }

    fn is_denied(&self) -> bool {
        self.outcome
            .as_ref()
            .is_some_and(|outcome| outcome.paid_cents == 0)
    }
}

/// A chain's directory and lines; each line is its own claim (one session, one payer).
#[derive(Debug, Clone)]
pub struct ChainData {
    pub chain: Uuid,
    pub clinics: Vec<Clinic>,
    pub payers: Vec<Payer>,
    pub lines: Vec<Line>,
}

impl ChainData {
    /// An empty chain with `clinics` clinics (states cycling through `states`) and named payers.
    pub fn new(clinics: usize, states: &[&str], payers: &[&str]) -> ChainData {
        ChainData {
            chain: Uuid::new_v4(),
            clinics: (0..clinics)
                .map(|index| Clinic {
                    id: Uuid::new_v4(),
                    name: format!("Clinic {:03}", index + 1),
                    state: states[index % states.len()].to_owned(),
                })
                .collect(),
            payers: payers
                .iter()
                .map(|name| Payer {
                    id: Uuid::new_v4(),
                    name: (*name).to_owned(),
                })
                .collect(),
            lines: Vec::new(),
        }
    }

    /// Writes the directory, claims, line outcomes and rollups (computed from the lines).
    pub async fn write(&self, pool: &PgPool) -> anyhow::Result<()> {
        let mut connection = pool.acquire().await?;
        let chain = self.chain;
        let mut clinics = String::new();
        for clinic in &self.clinics {
            clinics.push_str(&format!(
                "{chain},{},{},1234567893,123456789,1 Main St,Seattle,{},98101,America/Los_Angeles,11,0\n",
                clinic.id, clinic.name, clinic.state
            ));
        }
        copy(
            &mut connection,
            "read_models.clinics (chain_id, clinic_id, name, npi, tax_id, address_line, city, state, \
             postal_code, time_zone, place_of_service, last_sequence)",
            clinics,
        )
        .await?;
        let mut payers = String::new();
        for payer in &self.payers {
            payers.push_str(&format!(
                "{chain},{},{},{},0\n",
                payer.id,
                payer.name,
                payer.name.to_lowercase().replace(' ', "-")
            ));
        }
        copy(
            &mut connection,
            "read_models.payers (chain_id, payer_id, name, rules_key, last_sequence)",
            payers,
        )
        .await?;

        let (mut claims, mut outcomes) = (String::new(), String::new());
        for line in &self.lines {
            let session = Uuid::new_v4();
            let (status, adjudicated_on, allowed, paid, responsibility) = match &line.outcome {
                None => ("submitted", String::new(), 0, 0, 0),
                Some(outcome) => (
                    if outcome.paid_cents > 0 {
                        "paid"
                    } else {
                        "denied"
                    },
                    outcome.adjudicated_on.to_string(),
                    outcome.allowed_cents,
                    outcome.paid_cents,
                    outcome.patient_responsibility_cents,
                ),
            };
            claims.push_str(&format!(
                "{chain},{session},{},{},{},{},{},{},{{}},{},[],0,{},{},{},{},{},{}\n",
                line.payer,
                line.clinic,
                Uuid::nil(),
                Uuid::nil(),
                line.date_of_service,
                status,
                line.charge_cents,
                line.date_of_service,
                adjudicated_on,
                line.charge_cents,
                allowed,
                paid,
                responsibility,
            ));
            let (allowed, paid, responsibility, paid_units, adjustments) = match &line.outcome {
                None => (
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "[]".to_owned(),
                ),
                Some(outcome) => (
                    outcome.allowed_cents.to_string(),
                    outcome.paid_cents.to_string(),
                    outcome.patient_responsibility_cents.to_string(),
                    outcome.paid_units.to_string(),
                    adjustments_json(&outcome.adjustments),
                ),
            };
            outcomes.push_str(&format!(
                "{chain},{session},{},1,{},{{GP}},{},{},{allowed},{paid},{responsibility},{paid_units},{},\"{}\"\n",
                line.payer,
                line.code,
                line.units,
                line.charge_cents,
                line.is_denied(),
                adjustments.replace('"', "\"\""),
            ));
        }
        copy(
            &mut connection,
            "read_models.claims (chain_id, session_id, payer_id, clinic_id, therapist_id, patient_id, \
             date_of_service, status, diagnoses, total_charge_cents, findings, last_sequence, \
             submitted_on, adjudicated_on, billed_cents, allowed_cents, paid_cents, \
             patient_responsibility_cents)",
            claims,
        )
        .await?;
        copy(
            &mut connection,
            "read_models.claim_line_outcomes (chain_id, session_id, payer_id, line_number, code, \
             modifiers, units, charge_cents, allowed_cents, paid_cents, \
             patient_responsibility_cents, paid_units, denied, adjustments)",
            outcomes,
        )
        .await?;

        let (reimbursement, denials) = self.rollups();
        let mut rows = String::new();
        for ((month, clinic, payer, code), sums) in reimbursement {
            let values: Vec<String> = sums.iter().map(i64::to_string).collect();
            rows.push_str(&format!(
                "{chain},{month},{clinic},{payer},{code},{}\n",
                values.join(",")
            ));
        }
        copy(
            &mut connection,
            "read_models.reimbursement_monthly (chain_id, month, clinic_id, payer_id, code, \
             billed_lines, billed_units, billed_cents, adjudicated_lines, denied_lines, \
             allowed_cents, paid_cents, paid_units, patient_responsibility_cents, paid_lines, \
             days_to_payment_sum)",
            rows,
        )
        .await?;
        // The projector writes the chain and clinic rollups with the same deltas (migration 0012:
        // no trigger fills them any more); here they are the sums of the rows just written.
        for (table, keys) in [
            (
                "reimbursement_monthly_chain",
                "chain_id, month, payer_id, code",
            ),
            ("reimbursement_monthly_clinic", "chain_id, month, clinic_id"),
        ] {
            sqlx::query(&format!(
                "INSERT INTO read_models.{table} SELECT {keys}, sum(billed_lines), \
                 sum(billed_units), sum(billed_cents), sum(adjudicated_lines), sum(denied_lines), \
                 sum(allowed_cents), sum(paid_cents), sum(paid_units), \
                 sum(patient_responsibility_cents), sum(paid_lines), sum(days_to_payment_sum) \
                 FROM read_models.reimbursement_monthly WHERE chain_id = $1 GROUP BY {keys}"
            ))
            .bind(chain)
            .execute(&mut *connection)
            .await?;
        }
        let mut rows = String::new();
        for ((month, clinic, payer, code, group, reason), (lines, amount)) in denials {
            rows.push_str(&format!(
                "{chain},{month},{clinic},{payer},{code},{group},{reason},{lines},{amount}\n"
            ));
        }
        copy(
            &mut connection,
            "read_models.denial_reasons_monthly (chain_id, month, clinic_id, payer_id, code, \
             group_code, reason_code, lines, amount_cents)",
            rows,
        )
        .await?;
        Ok(())
    }

    /// The rollups as the projector's contract defines them, summed in Rust.
    #[allow(clippy::type_complexity)]
    pub fn rollups(
        &self,
    ) -> (
        BTreeMap<(NaiveDate, Uuid, Uuid, &'static str), [i64; 11]>,
        BTreeMap<
            (
                NaiveDate,
                Uuid,
                Uuid,
                &'static str,
                &'static str,
                &'static str,
            ),
            (i64, i64),
        >,
    ) {
        let mut reimbursement: BTreeMap<_, [i64; 11]> = BTreeMap::new();
        let mut denials: BTreeMap<_, (i64, i64)> = BTreeMap::new();
        for line in &self.lines {
            let month = line.date_of_service.with_day(1).expect("day 1 exists");
            let sums = reimbursement
                .entry((month, line.clinic, line.payer, line.code))
                .or_default();
            sums[0] += 1;
            sums[1] += i64::from(line.units);
            sums[2] += line.charge_cents;
            if let Some(outcome) = &line.outcome {
                sums[3] += 1;
                sums[4] += i64::from(line.is_denied());
                sums[5] += outcome.allowed_cents;
                sums[6] += outcome.paid_cents;
                sums[7] += i64::from(outcome.paid_units);
                sums[8] += outcome.patient_responsibility_cents;
                if outcome.paid_cents > 0 {
                    sums[9] += 1;
                    sums[10] += (outcome.adjudicated_on - line.date_of_service).num_days();
                }
                if line.is_denied() {
                    for (group, reason, amount) in &outcome.adjustments {
                        let entry = denials
                            .entry((month, line.clinic, line.payer, line.code, *group, *reason))
                            .or_default();
                        entry.0 += 1;
                        entry.1 += amount;
                    }
                }
            }
        }
        (reimbursement, denials)
    }
}

fn adjustments_json(adjustments: &[(&str, &str, i64)]) -> String {
    let items: Vec<String> = adjustments
        .iter()
        .map(|(group, reason, amount)| {
            format!(r#"{{"group":"{group}","reason":"{reason}","amount_cents":{amount}}}"#)
        })
        .collect();
    format!("[{}]", items.join(","))
}

async fn copy(
    connection: &mut sqlx::PgConnection,
    target: &str,
    rows: String,
) -> anyhow::Result<()> {
    let mut copy = connection
        .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT csv)"))
        .await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// A small, fast, seeded generator (SplitMix64), so a run's data is the same every time.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// The payers of generated chains and what they pay per unit of each code (0: they deny it with
/// CO-50, not medically necessary).
pub const PAYER_TABLE: [(&str, [(&str, i64); 5]); 4] = [
    (
        "Medicare-like",
        [
            ("97124", 2_600),
            ("97140", 2_900),
            ("97110", 3_000),
            ("97112", 3_400),
            ("97530", 3_500),
        ],
    ),
    (
        "Massage Only",
        [
            ("97124", 3_200),
            ("97140", 0),
            ("97110", 2_800),
            ("97112", 3_000),
            ("97530", 3_100),
        ],
    ),
    (
        "Manual Plus",
        [
            ("97124", 2_400),
            ("97140", 3_800),
            ("97110", 3_100),
            ("97112", 3_300),
            ("97530", 3_600),
        ],
    ),
    (
        "Auto PIP",
        [
            ("97124", 4_000),
            ("97140", 4_200),
            ("97110", 4_100),
            ("97112", 4_300),
            ("97530", 4_400),
        ],
    ),
];

/// A seeded synthetic chain: `clinics` clinics over `days` days from `start`, `claims_per_day`
/// one-line claims per clinic per day; about 90 % adjudicated 14 to 45 days later, 5 % of those
/// denied CO-97 (bundled) besides what a payer never covers.
pub fn generate(
    seed: u64,
    clinics: usize,
    start: NaiveDate,
    days: i64,
    claims_per_day: u64,
) -> ChainData {
    let mut random = Seeded::new(seed);
    let names: Vec<&str> = PAYER_TABLE.iter().map(|(name, _)| *name).collect();
    let mut data = ChainData::new(clinics, &["WA", "OR", "CA", "NV", "ID"], &names);
    let directory = data.clone();
    for day in 0..days {
        let date = start + Duration::days(day);
        for clinic in &directory.clinics {
            for _ in 0..claims_per_day {
                let payer_index = random.below(PAYER_TABLE.len() as u64) as usize;
                let (code, rate) = PAYER_TABLE[payer_index].1[random.below(5) as usize];
                let units = 1 + random.below(4) as i32;
                let charge = 4_500 * i64::from(units);
                let line = Line::billed(
                    clinic,
                    &directory.payers[payer_index],
                    date,
                    code,
                    units,
                    charge,
                );
                let line = match random.below(100) {
                    0..=9 => line,
                    _ if rate == 0 => line.denied("CO", "50", 14 + random.below(31) as i64),
                    10..=14 => line.denied("CO", "97", 14 + random.below(31) as i64),
                    _ => line.paid(rate * i64::from(units), 14 + random.below(31) as i64),
                };
                data.lines.push(line);
            }
        }
    }
    data
}
