//! Validated code newtypes (CPT procedure codes, ICD-10 diagnosis codes) and the field error they share.

use std::fmt;

use rkyv::{Archive, Deserialize, Serialize};

/// A value that failed validation, naming the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct FieldError {
    /// The field that was rejected, for example `cpt_code`.
    pub field: &'static str,
    /// Why it was rejected, in words a clinic administrator can act on.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A CPT (or HCPCS level II) procedure code: exactly five ASCII letters or digits, such as `97140`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[rkyv(derive(Debug))]
pub struct CptCode(String);

impl CptCode {
    /// Accepts exactly five ASCII alphanumeric characters; letters are upper-cased.
    pub fn new(code: &str) -> Result<Self, FieldError> {
        if code.len() != 5 || !code.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                "cpt_code",
                format!("expected exactly 5 ASCII letters or digits, got {code:?}"),
            ));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CptCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ICD-10 diagnosis code such as `M54.5` or `S13.4XXA`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[rkyv(derive(Debug))]
pub struct Icd10Code(String);

impl Icd10Code {
    /// Accepts a letter, two characters that are digits (the second may be a letter, as in `C4A`),
    /// then optionally a dot and one to four letters or digits. Letters are upper-cased.
    pub fn new(code: &str) -> Result<Self, FieldError> {
        let upper = code.to_ascii_uppercase();
        let bytes = upper.as_bytes();
        let category_ok = bytes.len() >= 3
            && bytes[0].is_ascii_uppercase()
            && bytes[1].is_ascii_digit()
            && bytes[2].is_ascii_alphanumeric();
        let subcategory_ok = match &bytes[3.min(bytes.len())..] {
            [] => true,
            [b'.', rest @ ..] => {
                (1..=4).contains(&rest.len()) && rest.iter().all(u8::is_ascii_alphanumeric)
            }
            _ => false,
        };
        if !category_ok || !subcategory_ok {
            return Err(FieldError::new(
                "icd10_code",
                format!("expected a code shaped like M54 or M54.5 or S13.4XXA, got {code:?}"),
            ));
        }
        Ok(Self(upper))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpt_code_accepts_five_alphanumerics_and_normalises_case() {
        assert_eq!(CptCode::new("97140").unwrap().as_str(), "97140");
        assert_eq!(CptCode::new("g0283").unwrap().as_str(), "G0283");
    }

    #[test]
    fn cpt_code_rejects_wrong_length_and_symbols_naming_the_field() {
        for bad in ["9714", "971400", "97 40", "97.40", ""] {
            let error = CptCode::new(bad).unwrap_err();
            assert_eq!(error.field, "cpt_code", "{bad:?}");
        }
    }

    #[test]
    fn icd10_code_accepts_category_and_subcategory_forms() {
        for good in ["M54", "m54.5", "S13.4XXA", "C4A.0"] {
            assert!(Icd10Code::new(good).is_ok(), "{good:?}");
        }
        assert_eq!(Icd10Code::new("m54.5").unwrap().as_str(), "M54.5");
    }

    #[test]
    fn icd10_code_rejects_malformed_codes_naming_the_field() {
        for bad in ["", "M5", "554", "M54.", "M54.12345", "M54-5", "M54.5 "] {
            let error = Icd10Code::new(bad).unwrap_err();
            assert_eq!(error.field, "icd10_code", "{bad:?}");
        }
    }
}
