//! Money: integer minor units with a currency, and the one rounding rule.
//!
//! Amounts are `i64` minor units (cents for USD, yen for JPY, fils for KWD). Rates are
//! `rust_decimal::Decimal`. There is no conversion between currencies anywhere in the engine.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The one rounding rule of the engine: a computed commission is rounded **once**, to the
/// currency's minor unit, half away from zero ("commercial rounding": 0.5 cent → 1 cent,
/// −0.5 cent → −1 cent). Intermediate values are never rounded.
pub const COMMISSION_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Human name of [`COMMISSION_ROUNDING`], for documentation and logs.
pub const COMMISSION_ROUNDING_NAME: &str =
    "half away from zero, once per commission, to the minor unit";

/// Why a money operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a three-letter code.
    #[error("currency code must be three ASCII letters, got {0:?}")]
    BadCurrency(String),
    /// Arithmetic on two currencies.
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    /// Out of `i64` minor units.
    #[error("amount overflows 64-bit minor units")]
    Overflow,
    /// A decimal string that is not an exact amount of the currency.
    #[error("amount {0:?} is not a valid decimal amount in {1}")]
    BadAmount(String, Currency),
}

/// ISO 4217 currency code, stored upper-case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// Currencies whose minor unit is not the usual 2 decimals (ISO 4217 table).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMAL: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

impl Currency {
    /// US dollar (2 decimals).
    pub const USD: Currency = Currency(*b"USD");
    /// Euro (2 decimals).
    pub const EUR: Currency = Currency(*b"EUR");
    /// Japanese yen (no decimals).
    pub const JPY: Currency = Currency(*b"JPY");
    /// Kuwaiti dinar (3 decimals).
    pub const KWD: Currency = Currency(*b"KWD");

    /// Parses a three-letter code, any case.
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let b = code.as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::BadCurrency(code.to_string()));
        }
        Ok(Currency([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ]))
    }

    /// The upper-case code.
    pub fn code(&self) -> &str {
        // Constructed only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of decimals of the minor unit (JPY 0, USD 2, KWD 3).
    pub fn exponent(&self) -> u32 {
        let c = self.code();
        if ZERO_DECIMAL.contains(&c) {
            0
        } else if THREE_DECIMAL.contains(&c) {
            3
        } else {
            2
        }
    }

    /// Lower-case code, as Stripe writes it.
    pub fn lower(&self) -> String {
        self.code().to_ascii_lowercase()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::new(s)
    }
}
impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::new(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

/// An amount in integer minor units of one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents for USD). May be negative for reversals and carried negative balances.
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// `minor` units of `currency`.
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }
    /// Zero of `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }
    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }
    /// True above zero.
    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Parse a decimal major-unit string ("99.00", "1500") exactly; more decimals than the
    /// currency has is an error, never a silent rounding.
    pub fn parse_major(s: &str, currency: Currency) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadAmount(s.to_string(), currency);
        let d = Decimal::from_str(s.trim()).map_err(|_| bad())?;
        let scaled = d * Decimal::from(10i64.pow(currency.exponent()));
        if scaled.fract() != Decimal::ZERO {
            return Err(bad());
        }
        let minor = i64::try_from(scaled.trunc()).map_err(|_| MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    /// The amount in major units as an exact decimal (no rounding involved).
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// Decimal string in major units with exactly the currency's decimals ("12.34", "1500",
    /// "1.250"), as PayPal's `amount.value` wants it.
    pub fn major_string(&self) -> String {
        let d = self.to_decimal();
        format!("{:.*}", self.currency.exponent() as usize, d)
    }

    /// Sum; errors on different currencies or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Difference; errors on different currencies or overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// The opposite amount.
    pub fn negate(self) -> Money {
        Money::new(-self.minor, self.currency)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(())
    }

    /// `self × rate`, rounded once with [`COMMISSION_ROUNDING`] to the minor unit.
    /// The computation runs on the minor-unit integer, so the result is already in minor units.
    pub fn apply_rate(&self, rate: Decimal) -> Result<Money, MoneyError> {
        let exact = Decimal::from(self.minor)
            .checked_mul(rate)
            .ok_or(MoneyError::Overflow)?;
        Money::round_minor(exact, self.currency)
    }

    /// An exact amount in (fractional) minor units, rounded once with [`COMMISSION_ROUNDING`].
    /// Use it when one commission is the exact sum of several parts (several reward groups on
    /// one invoice), so that the commission is still rounded only once.
    pub fn round_minor(exact_minor: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let rounded = exact_minor.round_dp_with_strategy(0, COMMISSION_ROUNDING);
        let minor = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(minor, currency))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major_string(), self.currency)
    }
}
impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn exponents() {
        assert_eq!(Currency::USD.exponent(), 2);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::new("eur").unwrap(), Currency::EUR);
        assert!(Currency::new("US").is_err());
        assert!(Currency::new("U$D").is_err());
    }

    /// The named rounding rule, in worked minor units.
    #[test]
    fn rounding_rule_table() {
        let usd = |m| Money::new(m, Currency::USD);
        let cases: &[(i64, Decimal, i64)] = &[
            (9900, dec!(0.25), 2475),  // 25% of $99.00 = $24.75 exactly
            (1999, dec!(0.25), 500),   // 499.75 cents → 500 (half-up region)
            (1998, dec!(0.25), 500),   // 499.5 cents → 500 (midpoint away from zero)
            (1994, dec!(0.25), 499),   // 498.5 → 499 (not banker's 498)
            (1, dec!(0.5), 1),         // 0.5 cent → 1 cent
            (-1998, dec!(0.25), -500), // negatives mirror positives
            (-1, dec!(0.5), -1),
            (10000, dec!(0.05), 500),
            (333, dec!(0.333), 111), // 110.889 → 111
        ];
        for (base, rate, want) in cases {
            assert_eq!(
                usd(*base).apply_rate(*rate).unwrap().minor,
                *want,
                "{base} × {rate}"
            );
        }
        // JPY has no minor unit: ¥1,234 × 25% = 308.5 → ¥309
        assert_eq!(
            Money::new(1234, Currency::JPY)
                .apply_rate(dec!(0.25))
                .unwrap()
                .minor,
            309
        );
        // KWD has three: 12.345 KWD × 10% = 1.2345 → 1.235 KWD (1235 fils)
        assert_eq!(
            Money::new(12345, Currency::KWD)
                .apply_rate(dec!(0.10))
                .unwrap()
                .minor,
            1235
        );
    }

    #[test]
    fn parse_and_format_major() {
        assert_eq!(
            Money::parse_major("99.00", Currency::USD).unwrap().minor,
            9900
        );
        assert_eq!(
            Money::parse_major("1500", Currency::JPY).unwrap().minor,
            1500
        );
        assert!(Money::parse_major("15.5", Currency::JPY).is_err());
        assert!(Money::parse_major("1.001", Currency::USD).is_err());
        assert_eq!(
            Money::parse_major("1.250", Currency::KWD).unwrap().minor,
            1250
        );
        assert_eq!(Money::new(1234, Currency::USD).major_string(), "12.34");
        assert_eq!(Money::new(5, Currency::USD).major_string(), "0.05");
        assert_eq!(Money::new(-5, Currency::USD).major_string(), "-0.05");
        assert_eq!(Money::new(1500, Currency::JPY).major_string(), "1500");
        assert_eq!(Money::new(1250, Currency::KWD).major_string(), "1.250");
    }

    #[test]
    fn no_mixing_currencies() {
        let a = Money::new(1, Currency::USD);
        let b = Money::new(1, Currency::EUR);
        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch(..))
        ));
    }
}
