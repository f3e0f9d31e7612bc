//! Money as integer cents with checked arithmetic, so that no amount on a claim is ever rounded
//! through floating point or silently wraps.

use std::fmt;

use thiserror::Error;

/// An amount of US money in whole cents. Negative values are allowed because adjustments and
/// refunds are negative; a charge on a claim line is never negative, which the claim code checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(pub i64);

/// Arithmetic on [`Cents`] left the `i64` range. The field names which amount was being computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: amount out of range while computing {operation}")]
pub struct MoneyOverflow {
    /// The field whose value was being computed, for example `lines[0].charge`.
    pub field: String,
    /// What was being computed, for example `12 units x $29.76`.
    pub operation: String,
}

impl Cents {
    /// Zero cents.
    pub const ZERO: Cents = Cents(0);

    /// Builds an amount from whole dollars and cents, e.g. `Cents::from_dollars_cents(29, 76)`.
    /// Intended for constants and tests; it saturates instead of failing because its inputs are
    /// literals written by people.
    pub const fn from_dollars_cents(dollars: i64, cents: i64) -> Cents {
        Cents(dollars.saturating_mul(100).saturating_add(cents))
    }

    /// The amount in cents.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` when the sum leaves the `i64` range.
    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// `self - other`, or `None` when the difference leaves the `i64` range.
    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }

    /// `self * units`, or `None` when the product leaves the `i64` range.
    pub fn checked_mul_units(self, units: u32) -> Option<Cents> {
        self.0.checked_mul(i64::from(units)).map(Cents)
    }

    /// `self * units` with an error naming `field` on overflow.
    pub fn times_units(self, units: u32, field: &str) -> Result<Cents, MoneyOverflow> {
        self.checked_mul_units(units).ok_or_else(|| MoneyOverflow {
            field: field.to_owned(),
            operation: format!("{units} units x {self}"),
        })
    }

    /// The sum of `amounts` with an error naming `field` on overflow.
    pub fn sum<I: IntoIterator<Item = Cents>>(
        amounts: I,
        field: &str,
    ) -> Result<Cents, MoneyOverflow> {
        amounts.into_iter().try_fold(Cents::ZERO, |total, amount| {
            total.checked_add(amount).ok_or_else(|| MoneyOverflow {
                field: field.to_owned(),
                operation: format!("{total} + {amount}"),
            })
        })
    }
}

impl fmt::Display for Cents {
    /// Formats as dollars with two decimals, e.g. `$29.76` or `-$0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:02}", magnitude / 100, magnitude % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_whole_and_fractional_dollars_when_displayed_then_two_decimals_are_shown() {
        assert_eq!(Cents(2976).to_string(), "$29.76");
        assert_eq!(Cents(5).to_string(), "$0.05");
        assert_eq!(Cents(-5).to_string(), "-$0.05");
        assert_eq!(Cents(i64::MIN).to_string(), "-$92233720368547758.08");
    }

    #[test]
    fn given_an_overflowing_product_when_multiplied_then_the_error_names_the_field() {
        let error = Cents(i64::MAX)
            .times_units(2, "lines[0].charge")
            .unwrap_err();
        assert_eq!(error.field, "lines[0].charge");
        assert!(
            error
                .to_string()
                .starts_with("lines[0].charge: amount out of range")
        );
        assert_eq!(Cents(2976).times_units(3, "x"), Ok(Cents(8928)));
    }

    #[test]
    fn given_amounts_when_summed_then_overflow_is_reported_not_wrapped() {
        assert_eq!(Cents::sum([Cents(1), Cents(2)], "total"), Ok(Cents(3)));
        assert!(Cents::sum([Cents(i64::MAX), Cents(1)], "total").is_err());
    }
}
