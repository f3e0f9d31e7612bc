//! Rows in PostgreSQL's binary `COPY … FROM STDIN (FORMAT binary)` format, written into one buffer.
//!
//! The projector COPYs rows it knows are new straight into the read-model tables: the server
//! decodes binary fields without parsing text or building arrays of parameters, which makes COPY
//! the cheapest way in. Values are written in the column order of the `COPY` statement; each
//! method writes one field. Formats: <https://www.postgresql.org/docs/current/sql-copy.html> and
//! each type's `*_send` function.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// The fixed signature, flags and header extension length that open every binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Type oids used in array headers.
const TEXT_OID: u32 = 25;
const INT4_OID: u32 = 23;
/// Days and microseconds are counted from 2000-01-01 in PostgreSQL's binary formats.
const POSTGRES_EPOCH_DAYS_FROM_CE: i32 = 730_120;
const POSTGRES_EPOCH_MICROS_FROM_UNIX: i64 = 946_684_800_000_000;

/// A COPY stream being written.
#[derive(Debug)]
pub(crate) struct BinaryCopy {
    buffer: Vec<u8>,
    columns: i16,
    rows: usize,
}

impl BinaryCopy {
    /// A stream of rows of `columns` fields each, with room for about `bytes` of rows: sized from
    /// the rows up front, the buffer is not regrown (and copied) as it fills.
    pub(crate) fn with_capacity(columns: i16, bytes: usize) -> Self {
        let mut buffer = Vec::with_capacity(SIGNATURE.len() + bytes + 2);
        buffer.extend_from_slice(SIGNATURE);
        Self {
            buffer,
            columns,
            rows: 0,
        }
    }

    /// Starts a row; exactly `columns` fields must follow.
    pub(crate) fn row(&mut self) {
        self.rows += 1;
        self.buffer.extend_from_slice(&self.columns.to_be_bytes());
    }

    /// Rows started so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The finished stream, with its trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1_i16).to_be_bytes());
        self.buffer
    }

    fn field(&mut self, bytes: &[u8]) {
        self.length(bytes.len());
        self.buffer.extend_from_slice(bytes);
    }

    fn length(&mut self, length: usize) {
        // Every field the projector writes is far below 2 GiB, PostgreSQL's own limit.
        let length = i32::try_from(length).unwrap_or(i32::MAX);
        self.buffer.extend_from_slice(&length.to_be_bytes());
    }

    /// SQL NULL.
    pub(crate) fn null(&mut self) {
        self.buffer.extend_from_slice(&(-1_i32).to_be_bytes());
    }

    pub(crate) fn uuid(&mut self, value: Uuid) {
        self.field(value.as_bytes());
    }

    pub(crate) fn optional_uuid(&mut self, value: Option<Uuid>) {
        match value {
            Some(value) => self.uuid(value),
            None => self.null(),
        }
    }

    pub(crate) fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    pub(crate) fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    pub(crate) fn bytea(&mut self, value: &[u8]) {
        self.field(value);
    }

    pub(crate) fn optional_bytea(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => self.bytea(value),
            None => self.null(),
        }
    }

    pub(crate) fn int2(&mut self, value: i16) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn int4(&mut self, value: i32) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn optional_int4(&mut self, value: Option<i32>) {
        match value {
            Some(value) => self.int4(value),
            None => self.null(),
        }
    }

    pub(crate) fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn optional_date(&mut self, value: Option<NaiveDate>) {
        use chrono::Datelike as _;
        match value {
            Some(day) => self.int4(day.num_days_from_ce() - POSTGRES_EPOCH_DAYS_FROM_CE),
            None => self.null(),
        }
    }

    pub(crate) fn optional_timestamptz(&mut self, value: Option<DateTime<Utc>>) {
        match value {
            Some(at) => self.int8(at.timestamp_micros() - POSTGRES_EPOCH_MICROS_FROM_UNIX),
            None => self.null(),
        }
    }

    /// jsonb from JSON text: format version 1, then the text (the server parses it).
    pub(crate) fn jsonb(&mut self, json: &str) {
        self.length(json.len() + 1);
        self.buffer.push(1);
        self.buffer.extend_from_slice(json.as_bytes());
    }

    /// A one-dimensional `text[]` (empty when `values` is).
    pub(crate) fn text_array<'a>(&mut self, values: impl ExactSizeIterator<Item = &'a str>) {
        let at = self.array_header(TEXT_OID, values.len());
        for value in values {
            self.text(value);
        }
        self.patch_length(at);
    }

    /// A `text[]` of the comma-separated values in `joined` (empty for an empty string), the
    /// same array `string_to_array(joined, ',')` gives.
    pub(crate) fn joined_text_array(&mut self, joined: &str) {
        if joined.is_empty() {
            self.text_array(std::iter::empty());
        } else {
            let count = joined.split(',').count();
            let at = self.array_header(TEXT_OID, count);
            for value in joined.split(',') {
                self.text(value);
            }
            self.patch_length(at);
        }
    }

    /// A one-dimensional `integer[]`.
    pub(crate) fn int4_array(&mut self, values: impl ExactSizeIterator<Item = i32>) {
        let at = self.array_header(INT4_OID, values.len());
        for value in values {
            self.int4(value);
        }
        self.patch_length(at);
    }

    /// Writes a placeholder length and the array header; returns where the length goes.
    fn array_header(&mut self, element_oid: u32, count: usize) -> usize {
        let at = self.buffer.len();
        self.buffer.extend_from_slice(&0_i32.to_be_bytes());
        let dimensions: i32 = if count == 0 { 0 } else { 1 };
        self.buffer.extend_from_slice(&dimensions.to_be_bytes());
        // No NULL elements.
        self.buffer.extend_from_slice(&0_i32.to_be_bytes());
        self.buffer.extend_from_slice(&element_oid.to_be_bytes());
        if count > 0 {
            self.length(count);
            // Lower bound 1.
            self.buffer.extend_from_slice(&1_i32.to_be_bytes());
        }
        at
    }

    fn patch_length(&mut self, at: usize) {
        let length = self.buffer.len() - at - 4;
        let length = i32::try_from(length).unwrap_or(i32::MAX).to_be_bytes();
        self.buffer[at..at + 4].copy_from_slice(&length);
    }
}
