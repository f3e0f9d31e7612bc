//! Money as X12 renders it: integer cents written as a decimal with at most two fraction digits
//! (`140`, `140.5`, `140.25`, `-12.5`) and read back exactly, so no amount ever passes through
//! floating point.

use thiserror::Error;

/// Why a text is not an amount this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AmountError {
    /// Nothing, or only a sign.
    #[error("is empty")]
    Empty,
    /// A character other than digits, one leading `-` and one `.` (exponents, `+`, spaces).
    #[error("holds a character other than digits, a leading '-' and one '.'")]
    InvalidCharacter,
    /// More than two digits after the decimal point: cents cannot hold it exactly.
    #[error("has more than 2 decimals")]
    TooManyDecimals,
    /// A decimal point with no digit after it.
    #[error("ends with a decimal point")]
    TrailingDecimalPoint,
    /// More than the 18 digits of the X12 R type, or beyond the `i64` range of cents.
    #[error("is out of range")]
    OutOfRange,
}

/// The X12 R type's maximum number of digits (sign and decimal point excluded).
const MAX_DIGITS: usize = 18;

/// Renders `cents` with at most two decimals and no trailing zeros in the fraction.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let magnitude = cents.unsigned_abs();
    let (whole, fraction) = (magnitude / 100, magnitude % 100);
    match fraction {
        0 => format!("{sign}{whole}"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}", f / 10),
        f => format!("{sign}{whole}.{f:02}"),
    }
}

/// Reads an X12 decimal amount as cents, refusing anything it cannot hold exactly.
pub fn parse_cents(text: &str) -> Result<i64, AmountError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if unsigned.is_empty() {
        return Err(AmountError::Empty);
    }
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return Err(AmountError::InvalidCharacter);
    }
    let fraction = fraction.unwrap_or("00");
    match fraction.len() {
        0 => return Err(AmountError::TrailingDecimalPoint),
        1 | 2 => {}
        _ => return Err(AmountError::TooManyDecimals),
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(AmountError::Empty);
    }
    if whole.len() + fraction.len() > MAX_DIGITS {
        return Err(AmountError::OutOfRange);
    }
    // At most 18 digits, so every intermediate value fits in an i64.
    let number = |digits: &str| {
        digits
            .bytes()
            .fold(0_i64, |value, byte| value * 10 + i64::from(byte - b'0'))
    };
    let fraction_cents = if fraction.len() == 1 {
        number(fraction) * 10
    } else {
        number(fraction)
    };
    let magnitude = number(whole)
        .checked_mul(100)
        .and_then(|cents| cents.checked_add(fraction_cents))
        .ok_or(AmountError::OutOfRange)?;
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_cents_when_formatted_then_at_most_two_decimals_without_trailing_zeros() {
        assert_eq!(format_cents(14000), "140");
        assert_eq!(format_cents(14050), "140.5");
        assert_eq!(format_cents(14025), "140.25");
        assert_eq!(format_cents(-1250), "-12.5");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(0), "0");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(format_cents(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn given_decimal_texts_when_parsed_then_cents_are_exact() {
        assert_eq!(parse_cents("140"), Ok(14000));
        assert_eq!(parse_cents("140.5"), Ok(14050));
        assert_eq!(parse_cents("140.25"), Ok(14025));
        assert_eq!(parse_cents("-12.5"), Ok(-1250));
        assert_eq!(parse_cents(".5"), Ok(50));
        assert_eq!(parse_cents("0.05"), Ok(5));
        assert_eq!(parse_cents("100.00"), Ok(10000));
    }

    #[test]
    fn given_texts_cents_cannot_hold_when_parsed_then_each_is_refused_with_its_reason() {
        assert_eq!(parse_cents("80.123"), Err(AmountError::TooManyDecimals));
        assert_eq!(parse_cents("1e3"), Err(AmountError::InvalidCharacter));
        assert_eq!(parse_cents("1.5E2"), Err(AmountError::InvalidCharacter));
        assert_eq!(parse_cents("+1"), Err(AmountError::InvalidCharacter));
        assert_eq!(parse_cents(" 1"), Err(AmountError::InvalidCharacter));
        assert_eq!(parse_cents("1.2.3"), Err(AmountError::InvalidCharacter));
        assert_eq!(parse_cents("--1"), Err(AmountError::InvalidCharacter));
        assert_eq!(parse_cents(""), Err(AmountError::Empty));
        assert_eq!(parse_cents("-"), Err(AmountError::Empty));
        assert_eq!(parse_cents("1."), Err(AmountError::TrailingDecimalPoint));
        assert_eq!(parse_cents("."), Err(AmountError::TrailingDecimalPoint));
        assert_eq!(
            parse_cents("1234567890123456789"),
            Err(AmountError::OutOfRange)
        );
        assert_eq!(
            parse_cents("999999999999999999"),
            Err(AmountError::OutOfRange)
        );
    }

    proptest::proptest! {
        #[test]
        fn every_amount_round_trips(cents in -(10_i64.pow(17))..10_i64.pow(17)) {
            proptest::prop_assert_eq!(parse_cents(&format_cents(cents)), Ok(cents));
        }
    }
}
