//! The text rule every string of every JSON body obeys, checked in one place before any handler
//! runs, so that no event on the log carries text the read models cannot store or a biller cannot
//! see.

/// A string that breaks the text rule: the field's path and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidText {
    /// The field's path, e.g. `lines[1].description` (`body` for the body itself).
    pub field: String,
    /// Why.
    pub reason: String,
}

/// The longest string any field accepts; fields with a tighter rule check it themselves.
pub const MAX_STRING_LENGTH: usize = 2_000;

/// Fields whose text may span lines: notes and reasons keep newlines and tabs. Every other string
/// is a name, code or identifier and holds no control character at all.
pub const FREE_TEXT_FIELDS: [&str; 2] = ["description", "reason"];

/// Refuses a body holding a string that PostgreSQL cannot store (NUL) or that a biller cannot see
/// (control characters, terminal escape sequences), or that is longer than any field accepts,
/// naming the field. Checking every string of every body here, before any handler runs, is what
/// keeps such text off the log: an event, once appended, is replayed forever.
pub fn check_strings(value: &serde_json::Value, path: &mut String) -> Result<(), InvalidText> {
    match value {
        serde_json::Value::String(text) => check_text(path, text),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                check_strings(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        serde_json::Value::Object(fields) => {
            for (name, item) in fields {
                let length = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
                check_text(path, name)?;
                check_strings(item, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The text rule of one field (see [`check_strings`]).
pub fn check_text(field: &str, text: &str) -> Result<(), InvalidText> {
    let name = field.rsplit('.').next().unwrap_or(field);
    let name = name.split('[').next().unwrap_or(name);
    let free_text = FREE_TEXT_FIELDS.contains(&name);
    if let Some(character) = text.chars().find(|character| {
        character.is_control() && !(free_text && matches!(character, '\n' | '\t'))
    }) {
        let allowed = if free_text {
            "only newlines and tabs are allowed"
        } else {
            "none is allowed"
        };
        return Err(InvalidText {
            field: if field.is_empty() { "body" } else { field }.to_owned(),
            reason: format!(
                "holds the control character U+{:04X}; {allowed}",
                u32::from(character)
            ),
        });
    }
    if text.chars().count() > MAX_STRING_LENGTH {
        return Err(InvalidText {
            field: if field.is_empty() { "body" } else { field }.to_owned(),
            reason: format!("must be at most {MAX_STRING_LENGTH} characters"),
        });
    }
    Ok(())
}
