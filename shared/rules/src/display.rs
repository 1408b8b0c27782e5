//! How amounts and dates are written for people (e-mails, statements), per locale.
//!
//! A [`Locale`] is one of a short list of BCP 47 tags, each with the separators, symbol
//! placement and date pattern of its CLDR locale data (Unicode CLDR, `numbers` and
//! `dates/calendars/gregorian` of en-US, en-GB, de-DE, fr-FR, es-ES, nl-NL, ja-JP). Amounts keep
//! every decimal of their currency's minor unit ([`Currency::exponent`]: JPY none, KWD three),
//! never rounding: they are exact minor units written out. Currencies without a symbol in the
//! table below are written with their ISO code, as CLDR does for most of them in these locales.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// A locale for numbers and dates (default `en-US`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Locale {
    /// English (United States): `$1,234.56`, `Dec 4, 2026`.
    #[default]
    EnUs,
    /// English (United Kingdom): `$1,234.56`, `4 Dec 2026`.
    EnGb,
    /// German (Germany): `1.234,56 $`, `04.12.2026`.
    DeDe,
    /// French (France): `1 234,56 $`, `04/12/2026` (the group separator is U+202F).
    FrFr,
    /// Spanish (Spain): `1234,56 $` (CLDR groups from five digits: `12.345,67 $`), `04/12/2026`.
    EsEs,
    /// Dutch (Netherlands): `$ 1.234,56`, `04-12-2026`.
    NlNl,
    /// Japanese (Japan): `$1,234.56`, `2026/12/04`.
    JaJp,
}

/// A locale tag this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown locale {0:?}: use one of en-US, en-GB, de-DE, fr-FR, es-ES, nl-NL, ja-JP")]
pub struct UnknownLocale(pub String);

impl Locale {
    /// Every locale.
    pub const ALL: [Locale; 7] = [
        Locale::EnUs,
        Locale::EnGb,
        Locale::DeDe,
        Locale::FrFr,
        Locale::EsEs,
        Locale::NlNl,
        Locale::JaJp,
    ];

    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::EnUs => "en-US",
            Locale::EnGb => "en-GB",
            Locale::DeDe => "de-DE",
            Locale::FrFr => "fr-FR",
            Locale::EsEs => "es-ES",
            Locale::NlNl => "nl-NL",
            Locale::JaJp => "ja-JP",
        }
    }

    /// Parses a tag, any case, `_` or `-` (`en_us`, `EN-US`).
    pub fn parse(tag: &str) -> Result<Locale, UnknownLocale> {
        let norm = tag.trim().replace('_', "-").to_ascii_lowercase();
        Locale::ALL
            .into_iter()
            .find(|l| l.tag().to_ascii_lowercase() == norm)
            .ok_or_else(|| UnknownLocale(tag.to_string()))
    }

    /// (decimal separator, group separator, minimum digits before grouping applies).
    fn separators(self) -> (char, char, usize) {
        match self {
            Locale::EnUs | Locale::EnGb | Locale::JaJp => ('.', ',', 4),
            Locale::DeDe | Locale::NlNl => (',', '.', 4),
            Locale::FrFr => (',', '\u{202f}', 4),
            Locale::EsEs => (',', '.', 5),
        }
    }
}

impl TryFrom<String> for Locale {
    type Error = UnknownLocale;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Locale::parse(&s)
    }
}

impl From<Locale> for String {
    fn from(l: Locale) -> String {
        l.tag().to_string()
    }
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

/// The symbol of a currency where CLDR's locales above use one; `None`: write the ISO code.
fn symbol(currency: Currency, locale: Locale) -> Option<&'static str> {
    Some(match (currency.code(), locale) {
        ("USD", Locale::NlNl) => "US$",
        ("USD", _) => "$",
        ("EUR", _) => "€",
        ("GBP", _) => "£",
        ("JPY", Locale::JaJp) => "￥",
        ("JPY", _) => "¥",
        _ => return None,
    })
}

/// Digits of `n` (non-negative) with `group` every three digits, when it has at least `min`.
fn grouped(n: u128, group: char, min: usize) -> String {
    let digits = n.to_string();
    if digits.len() < min {
        return digits;
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(group);
        }
        out.push(c);
    }
    out
}

/// The number of an amount without its currency: every decimal of the minor unit, the
/// locale's separators, a leading `-` when negative.
pub fn number(m: Money, locale: Locale) -> String {
    let (dec, group, min) = locale.separators();
    let exp = m.currency.exponent();
    let abs = m.minor.unsigned_abs() as u128;
    let scale = 10u128.pow(exp);
    let whole = grouped(abs / scale, group, min);
    let sign = if m.minor < 0 { "-" } else { "" };
    if exp == 0 {
        format!("{sign}{whole}")
    } else {
        format!(
            "{sign}{whole}{dec}{:0width$}",
            abs % scale,
            width = exp as usize
        )
    }
}

/// An amount with its currency as `locale` writes it: `$1,234.56` (en-US), `1.234,56 €`
/// (de-DE), `¥1,200` (en-US, no decimals), `KWD 1.250` (en-US, three decimals).
pub fn amount(m: Money, locale: Locale) -> String {
    let n = number(m, locale);
    let (digits, sign) = match n.strip_prefix('-') {
        Some(d) => (d.to_string(), "-"),
        None => (n, ""),
    };
    let sym = symbol(m.currency, locale);
    match locale {
        Locale::EnUs | Locale::EnGb | Locale::JaJp => match sym {
            Some(s) => format!("{sign}{s}{digits}"),
            None => format!("{sign}{}\u{a0}{digits}", m.currency.code()),
        },
        Locale::NlNl => format!("{}\u{a0}{sign}{digits}", sym.unwrap_or(m.currency.code())),
        Locale::DeDe | Locale::FrFr | Locale::EsEs => {
            format!("{sign}{digits}\u{a0}{}", sym.unwrap_or(m.currency.code()))
        }
    }
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date as `locale` writes it in its medium (en) or short numeric (others) form.
pub fn date(d: NaiveDate, locale: Locale) -> String {
    let (y, m, day) = (d.year(), d.month(), d.day());
    let mon = MONTHS_EN[(m as usize).saturating_sub(1) % 12];
    match locale {
        Locale::EnUs => format!("{mon} {day}, {y}"),
        Locale::EnGb => format!("{day} {mon} {y}"),
        Locale::DeDe => format!("{day:02}.{m:02}.{y}"),
        Locale::FrFr | Locale::EsEs => format!("{day:02}/{m:02}/{y}"),
        Locale::NlNl => format!("{day:02}-{m:02}-{y}"),
        Locale::JaJp => format!("{y}/{m:02}/{day:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(minor: i64, code: &str) -> Money {
        Money {
            minor,
            currency: Currency::new(code).unwrap(),
        }
    }

    #[test]
    fn amounts_in_worked_minor_units() {
        let nb = '\u{a0}';
        let nn = '\u{202f}';
        let cases: &[(i64, &str, Locale, String)] = &[
            (123_456, "USD", Locale::EnUs, "$1,234.56".into()),
            (5, "USD", Locale::EnUs, "$0.05".into()),
            (-2_475, "USD", Locale::EnUs, "-$24.75".into()),
            (100_000_000, "USD", Locale::EnUs, "$1,000,000.00".into()),
            (1_200, "JPY", Locale::EnUs, "¥1,200".into()),
            (1_200, "JPY", Locale::JaJp, "￥1,200".into()),
            (1_250, "KWD", Locale::EnUs, format!("KWD{nb}1.250")),
            (1_234_567, "KWD", Locale::EnUs, format!("KWD{nb}1,234.567")),
            (123_456, "EUR", Locale::DeDe, format!("1.234,56{nb}€")),
            (123_456, "EUR", Locale::FrFr, format!("1{nn}234,56{nb}€")),
            (123_456, "EUR", Locale::EsEs, format!("1234,56{nb}€")),
            (1_234_567, "EUR", Locale::EsEs, format!("12.345,67{nb}€")),
            (123_456, "EUR", Locale::NlNl, format!("€{nb}1.234,56")),
            (123_456, "GBP", Locale::EnGb, "£1,234.56".into()),
            (1_250, "KWD", Locale::DeDe, format!("1,250{nb}KWD")),
            (999, "JPY", Locale::DeDe, format!("999{nb}¥")),
        ];
        for (minor, code, locale, want) in cases {
            assert_eq!(
                &amount(m(*minor, code), *locale),
                want,
                "{minor} {code} {locale}"
            );
        }
    }

    #[test]
    fn numbers_keep_every_decimal_of_the_minor_unit() {
        assert_eq!(number(m(100, "USD"), Locale::EnUs), "1.00");
        assert_eq!(number(m(100, "JPY"), Locale::EnUs), "100");
        assert_eq!(number(m(100, "KWD"), Locale::EnUs), "0.100");
        assert_eq!(
            number(m(i64::MIN, "USD"), Locale::EnUs),
            "-92,233,720,368,547,758.08"
        );
    }

    #[test]
    fn dates_and_tags() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let want = [
            (Locale::EnUs, "Dec 4, 2026"),
            (Locale::EnGb, "4 Dec 2026"),
            (Locale::DeDe, "04.12.2026"),
            (Locale::FrFr, "04/12/2026"),
            (Locale::EsEs, "04/12/2026"),
            (Locale::NlNl, "04-12-2026"),
            (Locale::JaJp, "2026/12/04"),
        ];
        for (l, s) in want {
            assert_eq!(date(d, l), s);
            assert_eq!(Locale::parse(l.tag()), Ok(l));
        }
        assert_eq!(Locale::parse("en_us"), Ok(Locale::EnUs));
        assert!(Locale::parse("xx-YY").is_err());
        assert_eq!(Locale::default(), Locale::EnUs);
        let j: Locale = serde_json::from_str("\"de-DE\"").unwrap();
        assert_eq!(j, Locale::DeDe);
        assert!(serde_json::from_str::<Locale>("\"klingon\"").is_err());
    }
}
