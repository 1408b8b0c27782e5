//! What a sale is before the commission fold sees it: the commission base of one invoice line,
//! when an ended subscription stops earning, and which sales count toward partner levels.
//!
//! The fold itself ([`crate::plan::evaluate_customer`]) works on [`crate::plan::SaleLine`]s whose
//! amount is already this base.

use crate::levels::PartnerSale;
use crate::plan::InvoiceCommission;

/// The amounts of one invoice line that decide its commission base, as the payment provider
/// reports them, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineAmounts<'a> {
    /// The line's amount before discounts, including inclusive tax and excluding exclusive tax
    /// (Stripe's `amount` since 2025-02-24.acacia). Negative for a credit (proration).
    pub amount: i64,
    /// The discounts allocated to the line (invoice-level discounts included).
    pub discounts: &'a [i64],
    /// The inclusive taxes contained in `amount` (exclusive taxes are on top and never in it).
    pub inclusive_taxes: &'a [i64],
}

/// The commission base of an invoice line: after discounts, excluding tax.
///
/// `amount − Σ discounts − Σ inclusive taxes`; exclusive tax is not in `amount` and is left
/// alone; the sign is kept (a proration credit lowers the base). Customer-balance credit is not
/// subtracted: the customer paid for the line with money held earlier. `None` when the
/// arithmetic overflows (a payload no real invoice produces).
pub fn line_commission_base(line: LineAmounts<'_>) -> Option<i64> {
    let mut base = line.amount;
    for d in line.discounts {
        base = base.checked_sub(*d)?;
    }
    for t in line.inclusive_taxes {
        base = base.checked_sub(*t)?;
    }
    Some(base)
}

/// True when a subscription that ended at `ended_at_ms` earns nothing on a payment at
/// `paid_at_ms`: only payments strictly after the end are cut off (the final invoice that a
/// cancellation produces at the same instant still earns).
pub fn subscription_end_stops_payment(ended_at_ms: i64, paid_at_ms: i64) -> bool {
    ended_at_ms < paid_at_ms
}

/// The sale a booked invoice of `customer_id` adds to its partner's level sales, if it counts:
/// only in a program with levels, and only with a positive commission base (whether it is the
/// customer's first sale is decided later, over all of the partner's sales in business time).
pub fn level_sale_of(
    program_has_levels: bool,
    customer_id: &str,
    c: &InvoiceCommission,
) -> Option<PartnerSale> {
    (program_has_levels && c.base.minor > 0).then(|| PartnerSale::from_commission(customer_id, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};
    use crate::plan::CommissionReason;

    #[test]
    fn line_bases_in_worked_cents() {
        // (amount, discounts, inclusive taxes, base)
        type Case<'a> = (i64, &'a [i64], &'a [i64], Option<i64>);
        let cases: &[Case] = &[
            // 120.00 incl. 20 % VAT, 20.00 off: VAT on 100.00 is 16.67; base 83.33
            (12_000, &[2_000], &[1_667], Some(8_333)),
            // exclusive tax is not in the amount: nothing to subtract
            (10_000, &[], &[], Some(10_000)),
            // several discounts
            (10_000, &[1_000, 500], &[], Some(8_500)),
            // a proration credit stays negative
            (-5_000, &[], &[], Some(-5_000)),
            // overflow is no base, never a panic
            (i64::MIN, &[1], &[], None),
        ];
        for &(amount, discounts, inclusive_taxes, want) in cases {
            let line = LineAmounts {
                amount,
                discounts,
                inclusive_taxes,
            };
            assert_eq!(line_commission_base(line), want, "{line:?}");
        }
    }

    #[test]
    fn an_ended_subscription_stops_later_payments_only() {
        assert!(subscription_end_stops_payment(1_000, 1_001));
        assert!(!subscription_end_stops_payment(1_000, 1_000));
        assert!(!subscription_end_stops_payment(1_000, 999));
    }

    #[test]
    fn level_sales() {
        let c = |base: i64, first: bool| InvoiceCommission {
            invoice_id: "in_1".into(),
            paid_at: chrono::DateTime::from_timestamp_millis(0).unwrap_or_default(),
            base: Money::new(base, Currency::USD),
            is_first_sale: first,
            payment_number: 1,
            tier1: Money::zero(Currency::USD),
            tier2: Money::zero(Currency::USD),
            rate_used: None,
            reason: CommissionReason::NoEligibleLines,
        };
        assert_eq!(level_sale_of(false, "cus_1", &c(9_900, true)), None);
        assert_eq!(level_sale_of(true, "cus_1", &c(0, true)), None);
        assert_eq!(level_sale_of(true, "cus_1", &c(-100, false)), None);
        let s = level_sale_of(true, "cus_1", &c(9_900, true)).expect("counts");
        assert_eq!(
            (
                s.revenue.minor,
                s.customer_id.as_str(),
                s.invoice_id.as_str()
            ),
            (9_900, "cus_1", "in_1")
        );
    }
}
