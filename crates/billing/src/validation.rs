//! Syntax checks for the identifiers a claim carries (ICD-10-CM diagnosis codes, NPIs, federal tax
//! ids) and the typed error every parser in this crate returns, which names the field and the reason.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Invalid input: which field, what value, and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {value:?} {problem}")]
pub struct FieldError {
    /// The field as the caller named it, e.g. `services[2].code` or `diagnoses[0]`.
    pub field: String,
    /// The value that was refused, as given.
    pub value: String,
    /// Why it was refused.
    pub problem: Problem,
}

impl FieldError {
    /// Builds an error for `field` holding `value`.
    pub fn new(field: &str, value: &str, problem: Problem) -> FieldError {
        FieldError {
            field: field.to_owned(),
            value: value.to_owned(),
            problem,
        }
    }
}

/// The reason a value was refused. The `Display` text completes the sentence "<field>: <value> ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Problem {
    /// Not one of the procedure codes in this product's catalogue.
    #[error("is not a procedure code ClaimLedger bills (known: {known})", known = crate::codes::CptCode::known_list())]
    UnknownProcedureCode,
    /// A diagnosis code shorter than 3 characters.
    #[error("is too short for an ICD-10-CM code (3 to 7 characters, e.g. M54.50)")]
    IcdTooShort,
    /// A diagnosis code whose first character is not an upper-case letter.
    #[error("must start with an upper-case letter (ICD-10-CM)")]
    IcdFirstCharacterNotLetter,
    /// A diagnosis code whose second character is not a digit.
    #[error("must have a digit as its second character (ICD-10-CM)")]
    IcdSecondCharacterNotDigit,
    /// A diagnosis code whose third character is neither a digit nor an upper-case letter.
    #[error("must have a digit or upper-case letter as its third character (ICD-10-CM)")]
    IcdThirdCharacterInvalid,
    /// A diagnosis code longer than 3 characters without the decimal point after the category.
    #[error("must have a decimal point after the third character (ICD-10-CM, e.g. M54.50)")]
    IcdMissingDecimalPoint,
    /// A diagnosis code whose part after the decimal point is empty, longer than 4, or holds
    /// characters other than digits and upper-case letters.
    #[error("must have 1 to 4 digits or upper-case letters after the decimal point (ICD-10-CM)")]
    IcdInvalidExtension,
    /// An NPI that is not exactly ten ASCII digits.
    #[error("must be exactly 10 digits (NPI)")]
    NpiNotTenDigits,
    /// An NPI whose tenth digit does not match the Luhn check over the 80840 prefix.
    #[error("fails the NPI check digit (Luhn with the 80840 prefix)")]
    NpiCheckDigitMismatch,
    /// A tax id that is not nine digits (an EIN written NN-NNNNNNN or an SSN written NNN-NN-NNNN
    /// are accepted with their hyphens).
    #[error("must be 9 digits (EIN NN-NNNNNNN or SSN NNN-NN-NNNN)")]
    TaxIdNotNineDigits,
    /// A diagnosis beyond the twelve that item 21 of the CMS-1500 holds.
    #[error("does not fit: a claim holds at most 12 diagnoses (item 21, A to L)")]
    TooManyDiagnoses,
}

/// A syntactically valid ICD-10-CM diagnosis code in its dotted form, e.g. `M54.50` or `S13.4XXA`.
///
/// The check follows domain.md section 8: `^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$`, hand-written.
/// It is a syntax check only: whether a code is a billable leaf in the fiscal year's code set
/// (e.g. M54.5 was deleted on 30 Sep 2021) needs the official table, which this crate does not hold.
/// Lower-case input is refused rather than upper-cased because the claim must carry exactly what
/// the clinician documented; the caller may normalise before parsing if its intake allows it.
///
/// The code is stored inline (at most 8 bytes, e.g. `S13.4XXA`), so it is `Copy` and parsing it
/// does not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Icd10Code {
    bytes: [u8; ICD10_MAX_LEN],
    len: u8,
}

/// The longest dotted ICD-10-CM code: three characters, the decimal point and four more.
const ICD10_MAX_LEN: usize = 8;

impl Icd10Code {
    /// Parses `value` as the content of `field`.
    pub fn parse(field: &str, value: &str) -> Result<Icd10Code, FieldError> {
        Icd10Code::try_from_text(value).map_err(|problem| FieldError::new(field, value, problem))
    }

    /// Parses `value` without naming a field; the caller names it when reporting the problem.
    pub fn try_from_text(value: &str) -> Result<Icd10Code, Problem> {
        check_icd10_syntax(value)?;
        let mut bytes = [0_u8; ICD10_MAX_LEN];
        bytes[..value.len()].copy_from_slice(value.as_bytes());
        // The syntax check bounds the length to 8, so it fits in a u8.
        Ok(Icd10Code {
            bytes,
            len: value.len() as u8,
        })
    }

    /// The code with its decimal point, as printed in item 21 of the CMS-1500.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters, digits and '.' are stored (checked in `try_from_text`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The code without the decimal point, as the 837P HI segment carries it.
    pub fn without_decimal(&self) -> String {
        self.as_str().replace('.', "")
    }
}

impl fmt::Display for Icd10Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Icd10Code {
    type Err = FieldError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Icd10Code::parse("diagnosis", value)
    }
}

pub(crate) fn check_icd10_syntax(value: &str) -> Result<(), Problem> {
    let bytes = value.as_bytes();
    if bytes.len() < 3 {
        return Err(Problem::IcdTooShort);
    }
    if !bytes[0].is_ascii_uppercase() {
        return Err(Problem::IcdFirstCharacterNotLetter);
    }
    if !bytes[1].is_ascii_digit() {
        return Err(Problem::IcdSecondCharacterNotDigit);
    }
    let is_code_character = |byte: u8| byte.is_ascii_digit() || byte.is_ascii_uppercase();
    if !is_code_character(bytes[2]) {
        return Err(Problem::IcdThirdCharacterInvalid);
    }
    match bytes.get(3) {
        None => Ok(()),
        Some(b'.') => {
            let extension = &bytes[4..];
            if (1..=4).contains(&extension.len())
                && extension.iter().all(|&byte| is_code_character(byte))
            {
                Ok(())
            } else {
                Err(Problem::IcdInvalidExtension)
            }
        }
        Some(_) => Err(Problem::IcdMissingDecimalPoint),
    }
}

/// A National Provider Identifier whose check digit is valid.
///
/// The tenth digit is the Luhn check digit computed as if the nine-digit base were prefixed by
/// 80840, which is the same as adding 24 to the Luhn sum (domain.md 6.3). The leading digit is not
/// restricted to 1 or 2: that rule is only [S] in domain.md, and refusing a real NPI would block a
/// claim, whereas a wrong leading digit is caught by the payer's enrolment check anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Npi([u8; 10]);

impl Npi {
    /// Parses `value` as the content of `field`.
    pub fn parse(field: &str, value: &str) -> Result<Npi, FieldError> {
        let bytes = value.as_bytes();
        if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(FieldError::new(field, value, Problem::NpiNotTenDigits));
        }
        let mut digits = [0_u8; 10];
        digits.copy_from_slice(bytes);
        let base: [u8; 9] = std::array::from_fn(|index| digits[index] - b'0');
        if npi_check_digit(&base) != digits[9] - b'0' {
            return Err(FieldError::new(
                field,
                value,
                Problem::NpiCheckDigitMismatch,
            ));
        }
        Ok(Npi(digits))
    }

    /// The ten digits.
    pub fn as_str(&self) -> &str {
        // The array only ever holds ASCII digits (checked in `parse`), so it is valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The NPI check digit for a nine-digit base: Luhn over the base with the 80840 prefix folded in
/// as the constant 24.
pub fn npi_check_digit(base: &[u8; 9]) -> u8 {
    let mut sum: u32 = 24;
    // Double every second digit starting from the rightmost digit of the base.
    for (position_from_right, &digit) in base.iter().rev().enumerate() {
        let digit = u32::from(digit);
        sum += if position_from_right % 2 == 0 {
            let doubled = digit * 2;
            doubled / 10 + doubled % 10
        } else {
            digit
        };
    }
    // The value is below 10 by construction, so the narrowing cannot lose information.
    ((10 - sum % 10) % 10) as u8
}

impl fmt::Display for Npi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Npi {
    type Err = FieldError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Npi::parse("npi", value)
    }
}

/// A federal tax id (item 25): nine digits, stored without hyphens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaxId([u8; 9]);

impl TaxId {
    /// Parses `value` as the content of `field`; hyphens are accepted only in the EIN
    /// (NN-NNNNNNN) and SSN (NNN-NN-NNNN) positions.
    pub fn parse(field: &str, value: &str) -> Result<TaxId, FieldError> {
        let refuse = || FieldError::new(field, value, Problem::TaxIdNotNineDigits);
        let bytes = value.as_bytes();
        let hyphens: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte == b'-')
            .map(|(index, _)| index)
            .collect();
        let hyphens_well_placed = matches!(
            (bytes.len(), hyphens.as_slice()),
            (9, []) | (10, [2]) | (11, [3, 6])
        );
        if !hyphens_well_placed {
            return Err(refuse());
        }
        let digits: Vec<u8> = bytes.iter().copied().filter(|byte| *byte != b'-').collect();
        if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(refuse());
        }
        let mut array = [0_u8; 9];
        array.copy_from_slice(&digits);
        Ok(TaxId(array))
    }

    /// The nine digits without hyphens.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are stored (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_cms_example_base_when_the_check_digit_is_computed_then_it_is_3() {
        assert_eq!(npi_check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), 3);
    }

    #[test]
    fn given_the_domain_vectors_when_parsed_then_both_npis_are_valid() {
        assert_eq!(
            Npi::parse("rendering_npi", "1234567893").map(|npi| npi.to_string()),
            Ok("1234567893".to_owned())
        );
        assert!(Npi::parse("rendering_npi", "1558598797").is_ok());
    }

    #[test]
    fn given_a_wrong_check_digit_when_parsed_then_the_error_names_field_and_reason() {
        let error = Npi::parse("clinic_npi", "1234567890").unwrap_err();
        assert_eq!(error.field, "clinic_npi");
        assert_eq!(error.problem, Problem::NpiCheckDigitMismatch);
        assert_eq!(
            error.to_string(),
            "clinic_npi: \"1234567890\" fails the NPI check digit (Luhn with the 80840 prefix)"
        );
    }

    #[test]
    fn given_non_digits_or_wrong_length_when_parsed_then_npi_is_refused() {
        for bad in ["", "123456789", "12345678930", "12345678a3", "１234567893"] {
            assert_eq!(
                Npi::parse("npi", bad).unwrap_err().problem,
                Problem::NpiNotTenDigits,
                "{bad}"
            );
        }
    }

    #[test]
    fn given_codes_from_domain_section_8_when_parsed_then_they_are_valid() {
        for good in [
            "M54.50", "M54.2", "S13.4XXA", "G44.209", "M62.838", "C4A", "U07.1", "M79.7", "Z3A.01",
        ] {
            assert!(Icd10Code::parse("diagnoses[0]", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn given_malformed_codes_when_parsed_then_the_problem_is_specific() {
        let cases = [
            ("M5", Problem::IcdTooShort),
            ("m54.50", Problem::IcdFirstCharacterNotLetter),
            ("1M4", Problem::IcdFirstCharacterNotLetter),
            ("MM4.1", Problem::IcdSecondCharacterNotDigit),
            ("M5..1", Problem::IcdThirdCharacterInvalid),
            ("M5450", Problem::IcdMissingDecimalPoint),
            ("M54.", Problem::IcdInvalidExtension),
            ("M54.12345", Problem::IcdInvalidExtension),
            ("M54.5x", Problem::IcdInvalidExtension),
        ];
        for (value, problem) in cases {
            let error = Icd10Code::parse("diagnoses[1]", value).unwrap_err();
            assert_eq!(
                (error.field.as_str(), error.problem),
                ("diagnoses[1]", problem),
                "{value}"
            );
        }
    }

    #[test]
    fn given_a_dotted_code_when_sent_on_837_then_the_decimal_is_dropped() {
        assert_eq!(
            Icd10Code::parse("d", "S13.4XXA").unwrap().without_decimal(),
            "S134XXA"
        );
    }

    #[test]
    fn given_ein_ssn_and_plain_forms_when_parsed_then_tax_ids_agree() {
        assert_eq!(
            TaxId::parse("tax_id", "12-3456789").unwrap().as_str(),
            "123456789"
        );
        assert_eq!(
            TaxId::parse("tax_id", "123-45-6789").unwrap().as_str(),
            "123456789"
        );
        assert_eq!(
            TaxId::parse("tax_id", "123456789").unwrap().as_str(),
            "123456789"
        );
        for bad in ["1234-56789", "12345678", "12-345678a", "--3456789"] {
            assert_eq!(
                TaxId::parse("tax_id", bad).unwrap_err().problem,
                Problem::TaxIdNotNineDigits,
                "{bad}"
            );
        }
    }
}
