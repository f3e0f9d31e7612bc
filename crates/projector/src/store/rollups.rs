//! The rollups' SQL: a batch's deltas added to `reimbursement_monthly`, its coarser sums
//! `reimbursement_monthly_chain` (month × payer × code) and `reimbursement_monthly_clinic`
//! (month × clinic), and `denial_reasons_monthly`; rows whose counters all fall to zero are deleted,
//! so the tables do not depend on batching. The coarser rollups get the sums of the same deltas, so
//! each stays equal to a `GROUP BY` over `reimbursement_monthly`. Every table is written with one
//! statement for the whole batch, never one per row.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use claimledger_derive::rollup::{
    DenialKey, Denials, Reimbursement, ReimbursementKey, RollupDeltas,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ProjectorError;

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
/// they are aggregated here, in memory, and written like it, with one statement per table rather
/// than by row triggers, which would run four statements per changed row.
pub(crate) async fn write_rollups(
    connection: &mut PgConnection,
    schema: &str,
    deltas: &RollupDeltas,
) -> Result<(), ProjectorError> {
    let mut chain: BTreeMap<(Uuid, NaiveDate, Uuid, &str), Reimbursement> = BTreeMap::new();
    let mut clinic: BTreeMap<(Uuid, NaiveDate, Uuid), Reimbursement> = BTreeMap::new();
    for (key, counters) in &deltas.reimbursement {
        chain
            .entry((key.chain, key.month, key.payer, key.code.as_str()))
            .or_default()
            .add(counters, 1);
        clinic
            .entry((key.chain, key.month, key.clinic))
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
                KeyColumn::Uuid("chain_id", keys.iter().map(|key| key.chain).collect()),
                KeyColumn::Date("month", keys.iter().map(|key| key.month).collect()),
                KeyColumn::Uuid("clinic_id", keys.iter().map(|key| key.clinic).collect()),
                KeyColumn::Uuid("payer_id", keys.iter().map(|key| key.payer).collect()),
                KeyColumn::Text("code", keys.iter().map(|key| key.code.as_str()).collect()),
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
        let months: Vec<NaiveDate> = changed.iter().map(|(key, _)| key.line.month).collect();
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
        .bind(uuids(|key| key.line.chain))
        .bind(months)
        .bind(uuids(|key| key.line.clinic))
        .bind(uuids(|key| key.line.payer))
        .bind(texts(|key| key.line.code.as_str()))
        .bind(texts(|key| key.group.as_str()))
        .bind(texts(|key| key.reason.as_str()))
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
        .bind(uuids(|key| key.line.chain))
        .bind(
            changed
                .iter()
                .map(|(key, _)| key.line.month)
                .collect::<Vec<NaiveDate>>(),
        )
        .bind(uuids(|key| key.line.clinic))
        .bind(uuids(|key| key.line.payer))
        .bind(texts(|key| key.line.code.as_str()))
        .bind(texts(|key| key.group.as_str()))
        .bind(texts(|key| key.reason.as_str()))
        .persistent(false)
        .execute(&mut *connection)
        .await
        .map_err(ProjectorError::db(
            "deleting denial reason rollups that fell to zero",
        ))?;
    }
    Ok(())
}
