//! The monthly reimbursement rollups: what each claim contributes to `reimbursement_monthly` and
//! `denial_reasons_monthly`, and the per-batch deltas written to them and to the coarser
//! `reimbursement_monthly_chain` (month × payer × code) and `reimbursement_monthly_clinic`
//! (month × clinic).
//!
//! A claim contributes its latest submission's lines and their latest adjudication, counted in the
//! month of its date of service. A batch that changes a claim adds `after − before` for it, so a
//! resubmission or a second remittance replaces the claim's contribution instead of adding to it;
//! rows whose counters all fall to zero are deleted, so the tables do not depend on batching. The
//! coarser rollups get the sums of the same deltas, so each stays equal to a `GROUP BY` over
//! `reimbursement_monthly`. Every table is written with one statement for the whole batch, never
//! one per row.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ProjectorError;
use crate::lifecycle::Lifecycle;

/// (chain, month, clinic, payer, code).
pub(crate) type ReimbursementKey = (Uuid, NaiveDate, Uuid, Uuid, String);

/// (chain, month, clinic, payer, code, group code, reason code).
pub(crate) type DenialKey = (Uuid, NaiveDate, Uuid, Uuid, String, String, String);

/// The counters of one `reimbursement_monthly` row, in column order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reimbursement {
    pub billed_lines: i64,
    pub billed_units: i64,
    pub billed_cents: i64,
    pub adjudicated_lines: i64,
    pub denied_lines: i64,
    pub allowed_cents: i64,
    pub paid_cents: i64,
    pub paid_units: i64,
    pub patient_responsibility_cents: i64,
    pub paid_lines: i64,
    pub days_to_payment_sum: i64,
}

impl Reimbursement {
    fn add(&mut self, other: &Reimbursement, sign: i64) {
        self.billed_lines += sign * other.billed_lines;
        self.billed_units += sign * other.billed_units;
        self.billed_cents += sign * other.billed_cents;
        self.adjudicated_lines += sign * other.adjudicated_lines;
        self.denied_lines += sign * other.denied_lines;
        self.allowed_cents += sign * other.allowed_cents;
        self.paid_cents += sign * other.paid_cents;
        self.paid_units += sign * other.paid_units;
        self.patient_responsibility_cents += sign * other.patient_responsibility_cents;
        self.paid_lines += sign * other.paid_lines;
        self.days_to_payment_sum += sign * other.days_to_payment_sum;
    }
}

/// The counters of one `denial_reasons_monthly` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Denials {
    pub lines: i64,
    pub amount_cents: i64,
}

/// A batch's net changes to both rollups.
#[derive(Debug, Default)]
pub(crate) struct RollupDeltas {
    pub reimbursement: BTreeMap<ReimbursementKey, Reimbursement>,
    pub denials: BTreeMap<DenialKey, Denials>,
}

/// The first day of `day`'s month.
pub(crate) fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

impl RollupDeltas {
    /// Adds `sign` × the contribution of `claim` (nothing for a claim never submitted).
    pub(crate) fn add_claim(&mut self, claim: &Lifecycle, sign: i64) {
        let Some(date_of_service) = claim.date_of_service else {
            return;
        };
        if claim.submitted_on.is_none() {
            return;
        }
        let month = month_of(date_of_service);
        for line in &claim.lines {
            let mut counters = Reimbursement {
                billed_lines: 1,
                billed_units: i64::from(line.units),
                billed_cents: line.charge_cents,
                ..Reimbursement::default()
            };
            if let Some(result) = &line.result {
                let denied = result.paid_cents == 0;
                counters.adjudicated_lines = 1;
                counters.denied_lines = i64::from(denied);
                counters.allowed_cents = result.allowed_cents;
                counters.paid_cents = result.paid_cents;
                counters.paid_units = i64::from(result.paid_units);
                counters.patient_responsibility_cents = result.patient_responsibility_cents;
                if !denied {
                    counters.paid_lines = 1;
                    counters.days_to_payment_sum = claim
                        .adjudicated_on
                        .map_or(0, |paid_on| (paid_on - date_of_service).num_days());
                }
                if denied {
                    let mut reasons: BTreeMap<(&str, &str), i64> = BTreeMap::new();
                    for adjustment in &result.adjustments {
                        *reasons
                            .entry((adjustment.group.as_str(), adjustment.reason.as_str()))
                            .or_default() += adjustment.amount_cents;
                    }
                    for ((group, reason), amount) in reasons {
                        let entry = self
                            .denials
                            .entry((
                                claim.chain,
                                month,
                                claim.clinic,
                                claim.payer,
                                line.code.clone(),
                                group.to_owned(),
                                reason.to_owned(),
                            ))
                            .or_default();
                        entry.lines += sign;
                        entry.amount_cents += sign * amount;
                    }
                }
            }
            self.reimbursement
                .entry((
                    claim.chain,
                    month,
                    claim.clinic,
                    claim.payer,
                    line.code.clone(),
                ))
                .or_default()
                .add(&counters, sign);
        }
    }
}

/// A `Reimbursement` counter column and how to read it.
type Counter = (&'static str, fn(&Reimbursement) -> i64);

/// The `Reimbursement` counter columns, in table order.
const COUNTERS: [Counter; 11] = [
    ("billed_lines", |c| c.billed_lines),
    ("billed_units", |c| c.billed_units),
    ("billed_cents", |c| c.billed_cents),
    ("adjudicated_lines", |c| c.adjudicated_lines),
    ("denied_lines", |c| c.denied_lines),
    ("allowed_cents", |c| c.allowed_cents),
    ("paid_cents", |c| c.paid_cents),
    ("paid_units", |c| c.paid_units),
    ("patient_responsibility_cents", |c| {
        c.patient_responsibility_cents
    }),
    ("paid_lines", |c| c.paid_lines),
    ("days_to_payment_sum", |c| c.days_to_payment_sum),
];

/// One key column of a rollup with the batch's values, bound as one array.
enum KeyColumn<'a> {
    Uuid(&'static str, Vec<Uuid>),
    Date(&'static str, Vec<NaiveDate>),
    Text(&'static str, Vec<&'a str>),
}

impl KeyColumn<'_> {
    fn name(&self) -> &'static str {
        match self {
            KeyColumn::Uuid(name, _) | KeyColumn::Date(name, _) | KeyColumn::Text(name, _) => name,
        }
    }

    fn sql_type(&self) -> &'static str {
        match self {
            KeyColumn::Uuid(..) => "uuid[]",
            KeyColumn::Date(..) => "date[]",
            KeyColumn::Text(..) => "text[]",
        }
    }
}

/// A table with the `Reimbursement` counters, and what its statements are called in errors.
#[derive(Debug, Clone, Copy)]
struct CounterTable {
    name: &'static str,
    writing: &'static str,
    deleting: &'static str,
}

const MONTHLY: CounterTable = CounterTable {
    name: "reimbursement_monthly",
    writing: "writing reimbursement rollups",
    deleting: "deleting reimbursement rollups that fell to zero",
};

const CHAIN: CounterTable = CounterTable {
    name: "reimbursement_monthly_chain",
    writing: "writing chain rollups",
    deleting: "deleting chain rollups that fell to zero",
};

const CLINIC: CounterTable = CounterTable {
    name: "reimbursement_monthly_clinic",
    writing: "writing clinic rollups",
    deleting: "deleting clinic rollups that fell to zero",
};

/// The batch's deltas for one [`CounterTable`], one per key.
struct CounterDeltas<'a> {
    table: CounterTable,
    keys: Vec<KeyColumn<'a>>,
    counters: Vec<Reimbursement>,
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl<'a> CounterDeltas<'a> {
    /// Keys whose deltas cancelled out are left out: they change nothing.
    fn new<K>(
        table: CounterTable,
        deltas: impl IntoIterator<Item = (K, Reimbursement)>,
        columns: impl FnOnce(&[K]) -> Vec<KeyColumn<'a>>,
    ) -> Self {
        let (keys, counters): (Vec<K>, Vec<Reimbursement>) = deltas
            .into_iter()
            .filter(|(_, counters)| *counters != Reimbursement::default())
            .unzip();
        CounterDeltas {
            table,
            keys: columns(&keys),
            counters,
        }
    }

    fn bind_keys<'q>(&'q self, mut query: PgQuery<'q>) -> PgQuery<'q> {
        for column in &self.keys {
            query = match column {
                KeyColumn::Uuid(_, values) => query.bind(values),
                KeyColumn::Date(_, values) => query.bind(values),
                KeyColumn::Text(_, values) => query.bind(values),
            };
        }
        query
    }

    /// Adds the deltas with one UNNEST upsert, then deletes the rows they brought to zero.
    async fn write(
        &self,
        connection: &mut PgConnection,
        schema: &str,
    ) -> Result<(), ProjectorError> {
        if self.counters.is_empty() {
            return Ok(());
        }
        let table = self.table.name;
        let key_names: Vec<&str> = self.keys.iter().map(KeyColumn::name).collect();
        let key_names = key_names.join(", ");
        let counter_names: Vec<&str> = COUNTERS.iter().map(|(name, _)| *name).collect();
        let counter_names = counter_names.join(", ");
        let key_arrays: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(index, column)| format!("${}::{}", index + 1, column.sql_type()))
            .collect();
        let counter_arrays: Vec<String> = (0..COUNTERS.len())
            .map(|index| format!("${}::int8[]", self.keys.len() + index + 1))
            .collect();
        let updates: Vec<String> = COUNTERS
            .iter()
            .map(|(name, _)| format!("{name} = t.{name} + EXCLUDED.{name}"))
            .collect();
        let upsert = format!(
            "INSERT INTO {schema}.{table} AS t ({key_names}, {counter_names}) \
             SELECT * FROM UNNEST({}, {}) AS d({key_names}, {counter_names}) \
             ON CONFLICT ({key_names}) DO UPDATE SET {}",
            key_arrays.join(", "),
            counter_arrays.join(", "),
            updates.join(", "),
        );
        let mut query = self.bind_keys(sqlx::query(&upsert));
        for (_, counter) in COUNTERS {
            query = query.bind(self.counters.iter().map(counter).collect::<Vec<i64>>());
        }
        query
            .persistent(false)
            .execute(&mut *connection)
            .await
            .map_err(ProjectorError::db(self.table.writing))?;

        // A separate statement: sub-statements of one statement share a snapshot, so a DELETE in
        // the upsert's own WITH would not see the rows the upsert just brought to zero.
        let all_zero: Vec<String> = COUNTERS
            .iter()
            .map(|(name, _)| format!("t.{name} = 0"))
            .collect();
        let same_key: Vec<String> = self
            .keys
            .iter()
            .map(|column| format!("t.{0} = d.{0}", column.name()))
            .collect();
        let delete = format!(
            "DELETE FROM {schema}.{table} t USING UNNEST({}) AS d({key_names}) WHERE {} AND {}",
            key_arrays.join(", "),
            all_zero.join(" AND "),
            same_key.join(" AND "),
        );
        self.bind_keys(sqlx::query(&delete))
            .persistent(false)
            .execute(&mut *connection)
            .await
            .map_err(ProjectorError::db(self.table.deleting))?;
        Ok(())
    }
}

/// Adds the batch's deltas to every rollup and deletes the rows that fell to zero.
///
/// The chain rollup (month × payer × code, migration 0010) and the clinic rollup (month × clinic,
/// migration 0011) are sums of `reimbursement_monthly`, so their deltas are sums of its deltas:
/// they are aggregated here, in memory, and written like it, with one statement per table (they
/// used to be kept by row triggers, which ran four statements per changed row; migration 0012).
pub(crate) async fn write_rollups(
    connection: &mut PgConnection,
    schema: &str,
    deltas: &RollupDeltas,
) -> Result<(), ProjectorError> {
    let mut chain: BTreeMap<(Uuid, NaiveDate, Uuid, &str), Reimbursement> = BTreeMap::new();
    let mut clinic: BTreeMap<(Uuid, NaiveDate, Uuid), Reimbursement> = BTreeMap::new();
    for ((chain_id, month, clinic_id, payer_id, code), counters) in &deltas.reimbursement {
        chain
            .entry((*chain_id, *month, *payer_id, code.as_str()))
            .or_default()
            .add(counters, 1);
        clinic
            .entry((*chain_id, *month, *clinic_id))
            .or_default()
            .add(counters, 1);
    }
    let monthly = CounterDeltas::new(
        MONTHLY,
        deltas
            .reimbursement
            .iter()
            .map(|(key, counters)| (key, *counters)),
        |keys: &[&ReimbursementKey]| {
            vec![
                KeyColumn::Uuid("chain_id", keys.iter().map(|key| key.0).collect()),
                KeyColumn::Date("month", keys.iter().map(|key| key.1).collect()),
                KeyColumn::Uuid("clinic_id", keys.iter().map(|key| key.2).collect()),
                KeyColumn::Uuid("payer_id", keys.iter().map(|key| key.3).collect()),
                KeyColumn::Text("code", keys.iter().map(|key| key.4.as_str()).collect()),
            ]
        },
    );
    let chain = CounterDeltas::new(CHAIN, chain, |keys: &[(Uuid, NaiveDate, Uuid, &str)]| {
        vec![
            KeyColumn::Uuid("chain_id", keys.iter().map(|key| key.0).collect()),
            KeyColumn::Date("month", keys.iter().map(|key| key.1).collect()),
            KeyColumn::Uuid("payer_id", keys.iter().map(|key| key.2).collect()),
            KeyColumn::Text("code", keys.iter().map(|key| key.3).collect()),
        ]
    });
    let clinic = CounterDeltas::new(CLINIC, clinic, |keys: &[(Uuid, NaiveDate, Uuid)]| {
        vec![
            KeyColumn::Uuid("chain_id", keys.iter().map(|key| key.0).collect()),
            KeyColumn::Date("month", keys.iter().map(|key| key.1).collect()),
            KeyColumn::Uuid("clinic_id", keys.iter().map(|key| key.2).collect()),
        ]
    });
    for table in [&monthly, &chain, &clinic] {
        table.write(connection, schema).await?;
    }

    let changed: Vec<(&DenialKey, &Denials)> = deltas
        .denials
        .iter()
        .filter(|(_, counters)| **counters != Denials::default())
        .collect();
    if !changed.is_empty() {
        let uuids = |f: fn(&DenialKey) -> Uuid| {
            changed.iter().map(|(key, _)| f(key)).collect::<Vec<Uuid>>()
        };
        let texts = |f: fn(&DenialKey) -> &str| {
            changed.iter().map(|(key, _)| f(key)).collect::<Vec<&str>>()
        };
        let months: Vec<NaiveDate> = changed.iter().map(|(key, _)| key.1).collect();
        sqlx::query(&format!(
            "WITH delta AS ( \
                 SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::uuid[], $4::uuid[], $5::text[], \
                     $6::text[], $7::text[], $8::int8[], $9::int8[]) \
                   AS d(chain_id, month, clinic_id, payer_id, code, group_code, reason_code, \
                     lines, amount_cents)) \
             INSERT INTO {schema}.denial_reasons_monthly AS t \
             SELECT * FROM delta \
             ON CONFLICT (chain_id, month, clinic_id, payer_id, code, group_code, reason_code) \
             DO UPDATE SET lines = t.lines + EXCLUDED.lines, \
                 amount_cents = t.amount_cents + EXCLUDED.amount_cents"
        ))
        .bind(uuids(|key| key.0))
        .bind(months)
        .bind(uuids(|key| key.2))
        .bind(uuids(|key| key.3))
        .bind(texts(|key| key.4.as_str()))
        .bind(texts(|key| key.5.as_str()))
        .bind(texts(|key| key.6.as_str()))
        .bind(
            changed
                .iter()
                .map(|(_, counters)| counters.lines)
                .collect::<Vec<i64>>(),
        )
        .bind(
            changed
                .iter()
                .map(|(_, counters)| counters.amount_cents)
                .collect::<Vec<i64>>(),
        )
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db("writing denial reason rollups"))?;
        sqlx::query(&format!(
            "DELETE FROM {schema}.denial_reasons_monthly t \
             USING UNNEST($1::uuid[], $2::date[], $3::uuid[], $4::uuid[], $5::text[], \
                 $6::text[], $7::text[]) \
               AS d(chain_id, month, clinic_id, payer_id, code, group_code, reason_code) \
             WHERE t.lines = 0 AND t.amount_cents = 0 \
               AND t.chain_id = d.chain_id AND t.month = d.month AND t.clinic_id = d.clinic_id \
               AND t.payer_id = d.payer_id AND t.code = d.code \
               AND t.group_code = d.group_code AND t.reason_code = d.reason_code"
        ))
        .bind(uuids(|key| key.0))
        .bind(
            changed
                .iter()
                .map(|(key, _)| key.1)
                .collect::<Vec<NaiveDate>>(),
        )
        .bind(uuids(|key| key.2))
        .bind(uuids(|key| key.3))
        .bind(texts(|key| key.4.as_str()))
        .bind(texts(|key| key.5.as_str()))
        .bind(texts(|key| key.6.as_str()))
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db(
            "deleting denial reason rollups that fell to zero",
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{LineResult, OutcomeLine, RemittedAdjustment};
    use claimledger_claims::claim::ClaimStatus;

    fn claim(result: Option<LineResult>) -> Lifecycle {
        Lifecycle {
            chain: Uuid::from_u128(1),
            session: Uuid::from_u128(2),
            payer: Uuid::from_u128(3),
            clinic: Uuid::from_u128(4),
            date_of_service: NaiveDate::from_ymd_opt(2026, 3, 10),
            status: ClaimStatus::Paid,
            submitted_on: NaiveDate::from_ymd_opt(2026, 3, 11),
            adjudicated_on: NaiveDate::from_ymd_opt(2026, 3, 31),
            payer_claim_number: None,
            written_off_cents: 0,
            resubmissions: 0,
            lines: vec![OutcomeLine {
                line_number: 1,
                code: "97140".to_owned(),
                modifiers: Vec::new(),
                units: 2,
                charge_cents: 9000,
                result,
            }],
        }
    }

    #[test]
    fn given_a_claim_added_then_removed_when_summed_then_every_counter_is_zero() {
        let paid = claim(Some(LineResult {
            allowed_cents: 8000,
            paid_cents: 8000,
            patient_responsibility_cents: 0,
            paid_units: 2,
            adjustments: vec![RemittedAdjustment {
                group: "CO".to_owned(),
                reason: "45".to_owned(),
                amount_cents: 1000,
            }],
        }));
        let mut deltas = RollupDeltas::default();
        deltas.add_claim(&paid, 1);
        let key = (
            paid.chain,
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            paid.clinic,
            paid.payer,
            "97140".to_owned(),
        );
        let counters = deltas.reimbursement[&key];
        assert_eq!(counters.paid_lines, 1);
        assert_eq!(counters.days_to_payment_sum, 21);
        assert!(deltas.denials.is_empty(), "a paid line is not a denial");
        deltas.add_claim(&paid, -1);
        assert_eq!(deltas.reimbursement[&key], Reimbursement::default());
    }

    #[test]
    fn given_a_denied_line_when_added_then_its_adjustments_are_denial_reasons() {
        let denied = claim(Some(LineResult {
            allowed_cents: 0,
            paid_cents: 0,
            patient_responsibility_cents: 0,
            paid_units: 0,
            adjustments: vec![RemittedAdjustment {
                group: "CO".to_owned(),
                reason: "50".to_owned(),
                amount_cents: 9000,
            }],
        }));
        let mut deltas = RollupDeltas::default();
        deltas.add_claim(&denied, 1);
        let (key, counters) = deltas.denials.iter().next().expect("one reason");
        assert_eq!((key.5.as_str(), key.6.as_str()), ("CO", "50"));
        assert_eq!(
            *counters,
            Denials {
                lines: 1,
                amount_cents: 9000
            }
        );
        let reimbursement = deltas.reimbursement.values().next().expect("one row");
        assert_eq!(reimbursement.denied_lines, 1);
        assert_eq!(reimbursement.paid_lines, 0);
        assert_eq!(reimbursement.days_to_payment_sum, 0);
    }
}
