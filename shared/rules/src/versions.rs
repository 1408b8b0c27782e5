//! A program's versions over business time: each edit of a program (its settings and its
//! products) is a [`ProgramVersion`] in force from its `effective_from`, so that the commission
//! fold prices every invoice with the version in force at its paid time
//! ([`crate::plan::evaluate_customer_versions`]) and an edit never re-prices what was earned
//! before it.
//!
//! * [`ProgramVersions::in_force_at`]: the version with the latest `effective_from` at or before
//!   `t`; an invoice paid before the first version (a late-arriving old invoice of a program
//!   created since) takes the first version.
//! * [`plan_edit`]: what an edit writes. Nothing when the program and its products equal the
//!   latest version (re-applying an unchanged file); otherwise a new version, effective from the
//!   given time or the time of applying. An edit of a program that has versions may not take
//!   effect before the time of applying (invoices paid since may be booked, and would be
//!   re-priced) nor at or before the latest version; the first version of a new program may
//!   (nothing of it is booked yet). An edit may re-price levels or add some, never remove one
//!   (a partner's promotions are never undone, and the fold refuses a level the version in
//!   force lacks).

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::program::{Program, ProgramProduct};

/// A program as it stood from `effective_from` (business time) until the next version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramVersion {
    /// First business time this version prices.
    pub effective_from: DateTime<Utc>,
    /// The program's settings (plan, levels, rate lock, …).
    pub program: Program,
    /// Its products, with their overrides.
    pub products: Vec<ProgramProduct>,
}

impl ProgramVersion {
    /// True when this version has the settings `program` and the products `products` (in any
    /// order).
    pub fn same_content(&self, program: &Program, products: &[ProgramProduct]) -> bool {
        let key = |ps: &[ProgramProduct]| {
            let mut v: Vec<ProgramProduct> = ps.to_vec();
            v.sort_by(|a, b| a.product_id.cmp(&b.product_id));
            v
        };
        self.program == *program && key(&self.products) == key(products)
    }

    /// True when `product_id` is one of this version's products.
    pub fn has_product(&self, product_id: &str) -> bool {
        self.products
            .iter()
            .any(|p| p.program_id == self.program.id && p.product_id == product_id)
    }
}

/// Why a set of versions or an edit is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// No version at all.
    #[error("a program needs at least one version")]
    Empty,
    /// Versions of several programs in one history.
    #[error("version of program {found} in the history of program {expected}")]
    OtherProgram {
        /// The history's program.
        expected: String,
        /// The stray version's program.
        found: String,
    },
    /// Two versions from the same instant.
    #[error("program {program}: two versions effective from {at}")]
    SameInstant {
        /// The program.
        program: String,
        /// The instant.
        at: DateTime<Utc>,
    },
    /// An edit that would take effect before the time of applying.
    #[error(
        "program {program}: effective_from {effective_from} is before the time of applying \
         ({applied_at}); invoices paid since may be booked, and an edit never re-prices them"
    )]
    InThePast {
        /// The program.
        program: String,
        /// The edit's effective_from.
        effective_from: DateTime<Utc>,
        /// The time of applying.
        applied_at: DateTime<Utc>,
    },
    /// An edit at or before the latest version.
    #[error(
        "program {program}: effective_from {effective_from} must be after the latest \
         version's ({latest})"
    )]
    NotAfterLatest {
        /// The program.
        program: String,
        /// The edit's effective_from.
        effective_from: DateTime<Utc>,
        /// The latest version's effective_from.
        latest: DateTime<Utc>,
    },
    /// An edit that defines fewer levels than the latest version: partners promoted to a
    /// level keep it (promotions are never undone), so a level may be re-priced, not removed.
    #[error("program {program}: an edit may not remove levels (it defines {defined}, the latest version {latest})")]
    LevelsRemoved {
        /// The program.
        program: String,
        /// Levels the edit defines.
        defined: usize,
        /// Levels of the latest version.
        latest: usize,
    },
    /// An effective_from before 1970 (storage keys are milliseconds since then).
    #[error("effective_from {0} is before 1970")]
    BeforeEpoch(DateTime<Utc>),
}

/// A program's versions, ordered by `effective_from` (never empty, one program).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramVersions {
    versions: Vec<ProgramVersion>,
}

impl ProgramVersions {
    /// The history of `versions` (any order): at least one, all of one program, no two from the
    /// same instant.
    pub fn new(mut versions: Vec<ProgramVersion>) -> Result<Self, VersionError> {
        versions.sort_by_key(|v| v.effective_from);
        let first = versions.first().ok_or(VersionError::Empty)?;
        let id = first.program.id.clone();
        if let Some(v) = versions.iter().find(|v| v.program.id != id) {
            return Err(VersionError::OtherProgram {
                expected: id,
                found: v.program.id.clone(),
            });
        }
        if let Some(w) = versions
            .windows(2)
            .find(|w| w[0].effective_from == w[1].effective_from)
        {
            return Err(VersionError::SameInstant {
                program: id,
                at: w[0].effective_from,
            });
        }
        Ok(ProgramVersions { versions })
    }

    /// One version in force at all times (a program stored before versions existed, or a
    /// program that was never edited), effective from 1970.
    pub fn single(program: Program, products: Vec<ProgramProduct>) -> Self {
        ProgramVersions {
            versions: vec![ProgramVersion {
                effective_from: DateTime::UNIX_EPOCH,
                program,
                products,
            }],
        }
    }

    /// The version in force at business time `t`: the latest with `effective_from <= t`, or the
    /// first one for a time before it.
    pub fn in_force_at(&self, t: DateTime<Utc>) -> &ProgramVersion {
        let after = self.versions.partition_point(|v| v.effective_from <= t);
        &self.versions[after.saturating_sub(1)]
    }

    /// The latest version (the program as it is now or, for a scheduled edit, will be).
    pub fn latest(&self) -> &ProgramVersion {
        // `new` and `single` never build an empty history.
        &self.versions[self.versions.len() - 1]
    }

    /// Every version, oldest first.
    pub fn all(&self) -> &[ProgramVersion] {
        &self.versions
    }

    /// True when a version of the program has two tiers (a recruiter may earn on some invoice).
    pub fn any_two_tiers(&self) -> bool {
        self.versions
            .iter()
            .any(|v| v.program.tiers == crate::program::Tiers::Two)
    }

    /// True when the version in force at `t` lists one of `product_ids`: an invoice paid at
    /// `t` with these products may earn in the program.
    pub fn earns_on_any_at<'a>(
        &self,
        mut product_ids: impl Iterator<Item = &'a str>,
        t: DateTime<Utc>,
    ) -> bool {
        let v = self.in_force_at(t);
        product_ids.any(|p| v.has_product(p))
    }
}

/// What an edit of a program writes: `None` when `program` and `products` equal the latest of
/// `stored` (nothing changed), else the new version, effective from `effective_from` or, when
/// not given, `applied_at` (the time of applying). See the module documentation for what is
/// refused.
pub fn plan_edit(
    stored: Option<&ProgramVersions>,
    program: &Program,
    products: &[ProgramProduct],
    effective_from: Option<DateTime<Utc>>,
    applied_at: DateTime<Utc>,
) -> Result<Option<ProgramVersion>, VersionError> {
    if stored.is_some_and(|s| s.latest().same_content(program, products)) {
        return Ok(None);
    }
    // Versions are keyed by the millisecond.
    let applied_at = applied_at.trunc_subsecs(3);
    let from = effective_from.unwrap_or(applied_at).trunc_subsecs(3);
    if from < DateTime::UNIX_EPOCH {
        return Err(VersionError::BeforeEpoch(from));
    }
    if let Some(s) = stored {
        let latest = s.latest().effective_from;
        if from < applied_at {
            return Err(VersionError::InThePast {
                program: program.id.clone(),
                effective_from: from,
                applied_at,
            });
        }
        if from <= latest {
            return Err(VersionError::NotAfterLatest {
                program: program.id.clone(),
                effective_from: from,
                latest,
            });
        }
        let latest_levels = s.latest().program.levels.len();
        if program.levels.len() < latest_levels {
            return Err(VersionError::LevelsRemoved {
                program: program.id.clone(),
                defined: program.levels.len(),
                latest: latest_levels,
            });
        }
    }
    Ok(Some(ProgramVersion {
        effective_from: from,
        program: program.clone(),
        products: products.to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::tests::base;
    use crate::program::Reward;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, day, 0, 0, 0).unwrap()
    }
    fn version(day: u32, rate: rust_decimal::Decimal, products: &[&str]) -> ProgramVersion {
        let mut p = base();
        p.plan.reward = Reward::Percentage { rate };
        ProgramVersion {
            effective_from: at(day),
            products: products
                .iter()
                .map(|id| ProgramProduct::new("p1", *id))
                .collect(),
            program: p,
        }
    }
    fn rate_of(v: &ProgramVersion) -> Option<rust_decimal::Decimal> {
        v.program.plan.reward.percentage_rate()
    }

    #[test]
    fn the_version_in_force_at_a_time() {
        let h = ProgramVersions::new(vec![
            version(20, dec!(0.30), &["a"]),
            version(10, dec!(0.25), &["a", "b"]),
        ])
        .unwrap();
        // (time, rate in force, earns on b)
        let table = [
            (at(1), dec!(0.25), true), // before the first version: the first
            (at(10), dec!(0.25), true),
            (at(19), dec!(0.25), true),
            (at(20), dec!(0.30), false), // from the instant of the edit
            (at(31), dec!(0.30), false),
        ];
        for (t, rate, earns_b) in table {
            assert_eq!(rate_of(h.in_force_at(t)), Some(rate), "{t}");
            assert_eq!(h.earns_on_any_at(["b"].into_iter(), t), earns_b, "{t}");
        }
        assert_eq!(h.latest().effective_from, at(20));
    }

    #[test]
    fn histories_are_of_one_program_without_two_versions_at_one_instant() {
        assert_eq!(ProgramVersions::new(vec![]), Err(VersionError::Empty));
        let mut other = version(12, dec!(0.25), &[]);
        other.program.id = "p2".into();
        assert!(matches!(
            ProgramVersions::new(vec![version(10, dec!(0.25), &[]), other]),
            Err(VersionError::OtherProgram { .. })
        ));
        assert!(matches!(
            ProgramVersions::new(vec![
                version(10, dec!(0.25), &[]),
                version(10, dec!(0.30), &[])
            ]),
            Err(VersionError::SameInstant { .. })
        ));
    }

    #[test]
    fn an_edit_writes_a_version_only_when_something_changed() {
        let stored = ProgramVersions::new(vec![version(10, dec!(0.25), &["a", "b"])]).unwrap();
        let same = version(10, dec!(0.25), &["b", "a"]);
        let raised = version(10, dec!(0.30), &["a", "b"]);
        let now = at(15);
        // Unchanged (products in another order): nothing, whatever the effective_from.
        assert_eq!(
            plan_edit(
                Some(&stored),
                &same.program,
                &same.products,
                Some(at(1)),
                now
            ),
            Ok(None)
        );
        // Changed: effective from the time of applying, or a later time given.
        let v = plan_edit(Some(&stored), &raised.program, &raised.products, None, now)
            .unwrap()
            .unwrap();
        assert_eq!((v.effective_from, rate_of(&v)), (now, Some(dec!(0.30))));
        let v = plan_edit(
            Some(&stored),
            &raised.program,
            &raised.products,
            Some(at(20)),
            now,
        )
        .unwrap()
        .unwrap();
        assert_eq!(v.effective_from, at(20));
        // Refused: before the time of applying, or not after the latest version.
        assert!(matches!(
            plan_edit(
                Some(&stored),
                &raised.program,
                &raised.products,
                Some(at(14)),
                now
            ),
            Err(VersionError::InThePast { .. })
        ));
        assert!(matches!(
            plan_edit(
                Some(&stored),
                &raised.program,
                &raised.products,
                Some(at(10)),
                at(5)
            ),
            Err(VersionError::NotAfterLatest { .. })
        ));
        // A new program's first version may start in the past: nothing of it is booked.
        let v = plan_edit(None, &raised.program, &raised.products, Some(at(1)), now)
            .unwrap()
            .unwrap();
        assert_eq!(v.effective_from, at(1));
    }
}
