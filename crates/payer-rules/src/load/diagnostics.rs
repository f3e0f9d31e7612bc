//! Where a rules file is wrong: every problem located as `file:line: field: reason`, from the
//! byte spans the TOML parser keeps.

use super::*;

/// Collects the problems of one file, each located by a byte span.
pub(super) struct Problems<'a> {
    pub(super) file: &'a SourceFile,
    pub(super) errors: &'a mut Vec<RuleFileError>,
}

impl Problems<'_> {
    pub(super) fn push(
        &mut self,
        span: Range<usize>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.errors.push(RuleFileError {
            file: self.file.path.clone(),
            line: self.file.line_of(span.start),
            field: field.into(),
            reason: reason.into(),
        });
    }

    pub(super) fn code(&mut self, field: &str, value: &Spanned<String>) -> Option<CptCode> {
        match CptCode::parse(field, value.get_ref()) {
            Ok(code) => Some(code),
            Err(error) => {
                self.push(
                    value.span(),
                    field,
                    format!("{:?} {}", value.get_ref(), error.problem),
                );
                None
            }
        }
    }

    pub(super) fn date(&mut self, field: &str, value: &Spanned<Datetime>) -> Option<NaiveDate> {
        let datetime = value.get_ref();
        let date = match (datetime.date, datetime.time, datetime.offset) {
            (Some(date), None, None) => NaiveDate::from_ymd_opt(
                i32::from(date.year),
                u32::from(date.month),
                u32::from(date.day),
            ),
            _ => None,
        };
        if date.is_none() {
            self.push(
                value.span(),
                field,
                format!("{datetime} is not a calendar date (write it as 2026-01-01)"),
            );
        }
        date
    }

    /// A whole number that must be at least `minimum` and fit in `u32`.
    pub(super) fn count(&mut self, field: &str, value: &Spanned<i64>, minimum: u32) -> Option<u32> {
        let number = *value.get_ref();
        match u32::try_from(number) {
            Ok(count) if count >= minimum => Some(count),
            _ => {
                self.push(
                    value.span(),
                    field,
                    format!(
                        "{number} is out of range (must be between {minimum} and {})",
                        u32::MAX
                    ),
                );
                None
            }
        }
    }
}

/// Parses a file as `T`, turning a TOML or shape error into a located [`RuleFileError`].
pub(super) fn parse_toml<T: DeserializeOwned>(
    file: &SourceFile,
    errors: &mut Vec<RuleFileError>,
) -> Option<T> {
    match toml::from_str::<T>(&file.text) {
        Ok(value) => Some(value),
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            errors.push(RuleFileError {
                file: file.path.clone(),
                line: file.line_of(offset),
                field: field_at(&file.text, offset, error.message()),
                reason: error.message().to_owned(),
            });
            None
        }
    }
}

/// Names the field a TOML deserialisation error is about. The toml crate reports a message and a
/// span but no key path, so the path is rebuilt from the text: the table header in force at the
/// span (with the index of an array-of-tables entry) plus either the field quoted in the message
/// ("unknown field `x`", "missing field `x`") or the key written on the span's line.
pub(super) fn field_at(text: &str, offset: usize, message: &str) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |index| index + 1);
    let line_end = text[offset..]
        .find('\n')
        .map_or(text.len(), |index| offset + index);
    let line = &text[line_start..line_end];
    let quoted = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| {
            let rest = &message[message.find(prefix)? + prefix.len()..];
            Some(rest[..rest.find('`')?].to_owned())
        });
    let key = quoted.or_else(|| {
        let (key, _) = line.split_once('=')?;
        (line_start + key.len() < offset || offset == line_start).then(|| key.trim().to_owned())
    });
    // A missing field is reported at the table that lacks it, whose header line is the span's own
    // line, so the header search must include that line.
    let header_end = if line.trim_start().starts_with('[') {
        line_end
    } else {
        line_start
    };
    let table = table_path(&text[..header_end]);
    match (table.is_empty(), key) {
        (_, None) => {
            if table.is_empty() {
                "(file)".to_owned()
            } else {
                table
            }
        }
        (true, Some(key)) => key,
        (false, Some(key)) => format!("{table}.{key}"),
    }
}

/// The path of the last table header in `text`, e.g. `versions[1].fee_schedule`.
pub(super) fn table_path(text: &str) -> String {
    let Some(header) = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
    else {
        return String::new();
    };
    let name = header.trim_matches(|c| c == '[' || c == ']').trim();
    let array_root = name.split('.').next().unwrap_or(name);
    let array_header = format!("[[{array_root}]]");
    let entries = text
        .lines()
        .filter(|line| line.trim() == array_header)
        .count();
    if entries == 0 {
        return name.to_owned();
    }
    let rest = &name[array_root.len()..];
    format!("{array_root}[{}]{rest}", entries - 1)
}
