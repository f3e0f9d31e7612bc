//! One column list per table the store writes. The binary COPYs and the `INSERT … SELECT … FROM
//! UNNEST(…) ON CONFLICT` upserts are both built from it, so a column is named, typed and converted
//! in one place, and [`Write`] checks that a statement is given one array per column.

use sqlx::PgConnection;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;

use crate::error::ProjectorError;

/// A column: its name, the type of the array its values are bound as, and the expression that
/// turns the bound value `u.<name>` into the column's value (`None`: the value itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    name: &'static str,
    array: &'static str,
    value: Option<&'static str>,
}

/// A column stored as bound.
const fn plain(name: &'static str, array: &'static str) -> Column {
    Column {
        name,
        array,
        value: None,
    }
}

/// A column converted from its bound value by `value`, which names the value `{}`.
const fn converted(name: &'static str, array: &'static str, value: &'static str) -> Column {
    Column {
        name,
        array,
        value: Some(value),
    }
}

/// A read-model table: its name, its primary key and its columns in write order.
#[derive(Debug)]
pub(crate) struct Table {
    name: &'static str,
    key: &'static [&'static str],
    columns: &'static [Column],
}

/// What an upsert does with a row whose key exists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OnConflict {
    /// Replace every other column.
    Replace,
    /// Keep the stored row.
    Keep,
    /// Add these counters to the stored ones.
    Add(&'static [&'static str]),
    /// No key can exist already (its rows were deleted first): a plain insert.
    Insert,
}

impl Table {
    fn names(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|column| column.name).collect();
        names.join(", ")
    }

    /// `COPY` of every column from a binary stream.
    pub(crate) fn copy(&self, schema: &str) -> String {
        format!(
            "COPY {schema}.{} ({}) FROM STDIN (FORMAT binary)",
            self.name,
            self.names()
        )
    }

    /// The `INSERT … SELECT … FROM UNNEST(…)` of one array per column.
    pub(crate) fn upsert(&self, schema: &str, on_conflict: OnConflict) -> String {
        let names = self.names();
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| format!("${}::{}[]", index + 1, column.array))
            .collect();
        let values: Vec<String> = self
            .columns
            .iter()
            .map(|column| match column.value {
                None => format!("u.{}", column.name),
                Some(value) => value.replace("{}", &format!("u.{}", column.name)),
            })
            .collect();
        let mut statement = format!(
            "INSERT INTO {schema}.{} AS t ({names}) SELECT {} FROM UNNEST({}) AS u({names})",
            self.name,
            values.join(", "),
            arrays.join(", "),
        );
        let key = self.key.join(", ");
        match on_conflict {
            OnConflict::Insert => {}
            OnConflict::Keep => statement.push_str(&format!(" ON CONFLICT ({key}) DO NOTHING")),
            OnConflict::Replace => {
                let updates: Vec<String> = self
                    .columns
                    .iter()
                    .filter(|column| !self.key.contains(&column.name))
                    .map(|column| format!("{0} = EXCLUDED.{0}", column.name))
                    .collect();
                statement.push_str(&format!(
                    " ON CONFLICT ({key}) DO UPDATE SET {}",
                    updates.join(", ")
                ));
            }
            OnConflict::Add(counters) => {
                let updates: Vec<String> = counters
                    .iter()
                    .map(|counter| format!("{counter} = t.{counter} + EXCLUDED.{counter}"))
                    .collect();
                statement.push_str(&format!(
                    " ON CONFLICT ({key}) DO UPDATE SET {}",
                    updates.join(", ")
                ));
            }
        }
        statement
    }

    /// The number of columns: of arrays an upsert binds, of fields a COPY row holds.
    pub(crate) fn width(&self) -> usize {
        self.columns.len()
    }
}

/// An upsert being bound: one array per column, in the table's order.
pub(crate) struct Write<'q> {
    query: Query<'q, Postgres, PgArguments>,
    bound: usize,
    table: &'static Table,
}

impl<'q> Write<'q> {
    /// Binds `statement`, built by [`Table::upsert`] of `table`.
    pub(crate) fn new(statement: &'q str, table: &'static Table) -> Self {
        Write {
            query: sqlx::query(statement),
            bound: 0,
            table,
        }
    }

    /// The next column's values.
    pub(crate) fn bind<T>(mut self, values: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    {
        self.query = self.query.bind(values);
        self.bound += 1;
        self
    }

    /// The next column: `value` of each of `rows`.
    pub(crate) fn column<R, T>(self, rows: &'q [R], value: impl Fn(&'q R) -> T) -> Self
    where
        Vec<T>: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
    {
        self.bind(rows.iter().map(value).collect::<Vec<T>>())
    }

    /// Runs the statement; `operation` names it in errors.
    pub(crate) async fn run(
        self,
        connection: &mut PgConnection,
        operation: &'static str,
    ) -> Result<(), ProjectorError> {
        assert_eq!(
            self.bound,
            self.table.width(),
            "{} binds one array per column of {}",
            operation,
            self.table.name
        );
        self.query
            .persistent(false)
            .execute(connection)
            .await
            .map_err(ProjectorError::db(operation))?;
        Ok(())
    }
}

pub(crate) const SESSIONS: Table = Table {
    name: "sessions",
    key: &["chain_id", "session_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("session_id", "uuid"),
        plain("clinic_id", "uuid"),
        plain("therapist_id", "uuid"),
        plain("patient_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("status", "text"),
        plain("scheduled_start", "timestamptz"),
        plain("date_of_service", "date"),
        plain("planned_minutes", "int4"),
        plain("service_minutes", "int4"),
        plain("modality_minutes", "int4"),
        converted("services", "text", "{}::jsonb"),
        converted("diagnoses", "text", "string_to_array({}, ',')"),
        converted("unit_codes", "text", "string_to_array({}, ',')"),
        converted("unit_counts", "text", "string_to_array({}, ',')::integer[]"),
        plain("total_units", "int4"),
        plain("last_sequence", "int8"),
        plain("log_events", "bytea"),
    ],
};

pub(crate) const CLAIMS: Table = Table {
    name: "claims",
    key: &["chain_id", "session_id", "payer_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("session_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("clinic_id", "uuid"),
        plain("therapist_id", "uuid"),
        plain("patient_id", "uuid"),
        plain("date_of_service", "date"),
        plain("payer_key", "text"),
        plain("rules_version", "int4"),
        plain("rules_sha256", "bytea"),
        plain("place_of_service", "text"),
        plain("billing_npi", "text"),
        plain("tax_id", "text"),
        converted("diagnoses", "text", "string_to_array({}, ',')"),
        plain("total_charge_cents", "int8"),
        converted("findings", "text", "{}::jsonb"),
        plain("derivation_error", "text"),
        plain("last_sequence", "int8"),
    ],
};

pub(crate) const CLAIM_LINES: Table = Table {
    name: "claim_lines",
    key: &["chain_id", "session_id", "payer_id", "line_number"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("session_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("line_number", "int2"),
        plain("code", "text"),
        converted("modifiers", "text", "string_to_array({}, ',')"),
        plain("diagnosis_pointers", "text"),
        plain("units", "int4"),
        plain("charge_cents", "int8"),
        plain("rendering_npi", "text"),
    ],
};

pub(crate) const CLAIM_IDS: Table = Table {
    name: "claim_ids",
    key: &["chain_id", "claim_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("claim_id", "uuid"),
        plain("session_id", "uuid"),
        plain("payer_id", "uuid"),
    ],
};

pub(crate) const THERAPIST_DAY_UNITS: Table = Table {
    name: "therapist_day_units",
    key: &["chain_id", "therapist_id", "day"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("therapist_id", "uuid"),
        plain("day", "date"),
        plain("units", "int8"),
    ],
};

pub(crate) const CLINIC_CODE_DAY_UNITS: Table = Table {
    name: "clinic_code_day_units",
    key: &["chain_id", "clinic_id", "code", "day"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("clinic_id", "uuid"),
        plain("code", "text"),
        plain("day", "date"),
        plain("units", "int8"),
    ],
};

pub(crate) const PAYER_RULES: Table = Table {
    name: "payer_rules",
    key: &["chain_id", "payer_id", "version"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("version", "int4"),
        plain("payer_key", "text"),
        plain("effective_from", "date"),
        plain("rules_toml", "text"),
        plain("content_sha256", "bytea"),
        plain("sequence", "int8"),
    ],
};

pub(crate) const CLAIM_LINE_OUTCOMES: Table = Table {
    name: "claim_line_outcomes",
    key: &["chain_id", "session_id", "payer_id", "line_number"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("session_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("line_number", "int4"),
        plain("code", "text"),
        converted("modifiers", "text", "string_to_array({}, ',')"),
        plain("units", "int4"),
        plain("charge_cents", "int8"),
        plain("allowed_cents", "int8"),
        plain("paid_cents", "int8"),
        plain("patient_responsibility_cents", "int8"),
        plain("paid_units", "int4"),
        plain("denied", "bool"),
        converted("adjustments", "text", "{}::jsonb"),
    ],
};

pub(crate) const CLINICS: Table = Table {
    name: "clinics",
    key: &["chain_id", "clinic_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("clinic_id", "uuid"),
        plain("name", "text"),
        plain("npi", "text"),
        plain("tax_id", "text"),
        plain("address_line", "text"),
        plain("city", "text"),
        plain("state", "text"),
        plain("postal_code", "text"),
        plain("time_zone", "text"),
        plain("place_of_service", "text"),
        plain("last_sequence", "int8"),
    ],
};

pub(crate) const THERAPISTS: Table = Table {
    name: "therapists",
    key: &["chain_id", "therapist_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("therapist_id", "uuid"),
        plain("name", "text"),
        plain("npi", "text"),
        plain("licence_number", "text"),
        plain("licence_state", "text"),
        plain("last_sequence", "int8"),
    ],
};

pub(crate) const PAYERS: Table = Table {
    name: "payers",
    key: &["chain_id", "payer_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("name", "text"),
        plain("rules_key", "text"),
        plain("last_sequence", "int8"),
    ],
};

pub(crate) const PATIENTS: Table = Table {
    name: "patients",
    key: &["chain_id", "patient_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("patient_id", "uuid"),
        plain("forgotten", "bool"),
        plain("last_sequence", "int8"),
    ],
};

pub(crate) const COVERAGES: Table = Table {
    name: "coverages",
    key: &["chain_id", "coverage_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("coverage_id", "uuid"),
        plain("patient_id", "uuid"),
        plain("payer_id", "uuid"),
        plain("valid_from", "date"),
        plain("valid_to", "date"),
        plain("last_sequence", "int8"),
    ],
};

pub(crate) const REFERRALS: Table = Table {
    name: "referrals",
    key: &["chain_id", "referral_id"],
    columns: &[
        plain("chain_id", "uuid"),
        plain("referral_id", "uuid"),
        plain("patient_id", "uuid"),
        plain("referring_npi", "text"),
        converted("diagnoses", "text", "string_to_array({}, ',')"),
        plain("authorised_visits", "int4"),
        plain("issued_on", "date"),
        plain("expires_on", "date"),
        plain("last_sequence", "int8"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upsert_names_each_column_once_and_replaces_only_what_is_not_key() {
        let statement = PAYERS.upsert("read_models", OnConflict::Replace);
        assert_eq!(
            statement,
            "INSERT INTO read_models.payers AS t (chain_id, payer_id, name, rules_key, \
             last_sequence) SELECT u.chain_id, u.payer_id, u.name, u.rules_key, u.last_sequence \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int8[]) \
             AS u(chain_id, payer_id, name, rules_key, last_sequence) \
             ON CONFLICT (chain_id, payer_id) DO UPDATE SET name = EXCLUDED.name, \
             rules_key = EXCLUDED.rules_key, last_sequence = EXCLUDED.last_sequence"
        );
    }

    #[test]
    fn counters_are_added_and_converted_columns_keep_their_conversion() {
        let totals = THERAPIST_DAY_UNITS.upsert("s", OnConflict::Add(&["units"]));
        assert!(totals.ends_with(
            "ON CONFLICT (chain_id, therapist_id, day) DO UPDATE SET units = t.units + EXCLUDED.units"
        ));
        let sessions = SESSIONS.upsert("s", OnConflict::Insert);
        assert!(sessions.contains("string_to_array(u.unit_counts, ',')::integer[]"));
        assert!(!sessions.contains("ON CONFLICT"));
        assert_eq!(
            SESSIONS.copy("s"),
            "COPY s.sessions (chain_id, session_id, clinic_id, therapist_id, patient_id, \
             payer_id, status, scheduled_start, date_of_service, planned_minutes, \
             service_minutes, modality_minutes, services, diagnoses, unit_codes, unit_counts, \
             total_units, last_sequence, log_events) FROM STDIN (FORMAT binary)"
        );
    }
}
