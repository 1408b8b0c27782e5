//! Refunds and disputes in any order converge: for random refunds (some failing after pending),
//! disputes (won or lost) and a hold release at a random moment, delivered shuffled and
//! duplicated, booking only the difference after each delivery leaves every commission at
//! `commission − round(commission × taken back ÷ charge)`, with the books balanced and the
//! `pending` bucket never negative.

use proptest::prelude::*;
use rules::ledger::EntryKind;
use rules::refund::{
    after_moves, latest, reversal_moves, reversal_target, taken_back, DisputeStatus, MoveBucket,
    Observation, RefundStatus, ReversedSoFar,
};

#[derive(Debug, Clone)]
enum Delivery {
    Refund(Observation<RefundStatus>),
    Dispute(Observation<DisputeStatus>),
    Release,
}

fn refund_status() -> impl Strategy<Value = RefundStatus> {
    prop_oneof![
        Just(RefundStatus::Pending),
        Just(RefundStatus::RequiresAction),
        Just(RefundStatus::Succeeded),
        Just(RefundStatus::Failed),
        Just(RefundStatus::Canceled),
    ]
}

fn dispute_status() -> impl Strategy<Value = DisputeStatus> {
    prop_oneof![
        Just(DisputeStatus::WarningNeedsResponse),
        Just(DisputeStatus::NeedsResponse),
        Just(DisputeStatus::UnderReview),
        Just(DisputeStatus::Won),
        Just(DisputeStatus::Lost),
    ]
}

/// Up to 3 refunds with up to 3 status events each, up to 1 dispute with up to 3.
fn scenario() -> impl Strategy<Value = (i64, Vec<i64>, Vec<Delivery>)> {
    let charge = 1i64..=50_000;
    let commissions = prop::collection::vec(0i64..=20_000, 1..=2);
    (charge, commissions).prop_flat_map(|(charge, commissions)| {
        let refunds = prop::collection::vec(
            (
                1i64..=charge,
                prop::collection::vec((refund_status(), 0i64..100), 1..=3),
            ),
            0..=3,
        );
        let disputes = prop::collection::vec(
            (
                1i64..=charge,
                prop::collection::vec((dispute_status(), 0i64..100), 1..=3),
            ),
            0..=1,
        );
        (refunds, disputes).prop_map(move |(refunds, disputes)| {
            let mut out = vec![Delivery::Release];
            for (n, (amount, events)) in refunds.into_iter().enumerate() {
                for (k, (status, t)) in events.into_iter().enumerate() {
                    out.push(Delivery::Refund(Observation {
                        id: format!("re_{n}"),
                        amount,
                        status,
                        at_ms: t * 1000,
                        event_id: format!("evt_r{n}_{k}"),
                    }));
                }
            }
            for (n, (amount, events)) in disputes.into_iter().enumerate() {
                for (k, (status, t)) in events.into_iter().enumerate() {
                    out.push(Delivery::Dispute(Observation {
                        id: format!("dp_{n}"),
                        amount,
                        status,
                        at_ms: t * 1000,
                        event_id: format!("evt_d{n}_{k}"),
                    }));
                }
            }
            (charge, commissions.clone(), out)
        })
    })
}

/// One commission's buckets and what was taken back from it.
#[derive(Debug, Clone, Copy)]
struct Model {
    pending: i64,
    available: i64,
    released: bool,
    so_far: ReversedSoFar,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn any_order_converges_on_the_pro_rata_net(
        (charge, commissions, deliveries) in scenario(),
        order in prop::collection::vec(any::<u32>(), 0..64),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        // Shuffle by sorting on random keys, then deliver some events twice.
        let mut keyed: Vec<(u32, Delivery)> = deliveries
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, d)| (order.get(i).copied().unwrap_or(i as u32), d))
            .collect();
        keyed.sort_by_key(|(k, _)| *k);
        let mut sequence: Vec<Delivery> = keyed.into_iter().map(|(_, d)| d).collect();
        for d in &duplicates {
            let again = sequence[d.index(sequence.len())].clone();
            sequence.push(again);
        }

        let mut models: Vec<Model> = commissions
            .iter()
            .map(|&c| Model { pending: c, available: 0, released: false, so_far: ReversedSoFar::default() })
            .collect();
        let (mut refunds, mut disputes) = (vec![], vec![]);
        for d in &sequence {
            match d {
                Delivery::Refund(o) => refunds.push(o.clone()),
                Delivery::Dispute(o) => disputes.push(o.clone()),
                Delivery::Release => {
                    for m in models.iter_mut().filter(|m| !m.released) {
                        m.available += m.pending;
                        m.pending = 0;
                        m.released = true;
                    }
                    continue;
                }
            }
            let taken = taken_back(charge, &latest(&refunds), &latest(&disputes));
            for (m, &commission) in models.iter_mut().zip(&commissions) {
                let target = reversal_target(commission, taken, charge);
                let moves = reversal_moves(target, m.so_far, !m.released);
                for mv in &moves {
                    let signed = match mv.kind {
                        EntryKind::Reversed | EntryKind::ClawedBack => -mv.amount,
                        EntryKind::Adjusted => mv.amount,
                        other => panic!("unexpected {other:?}"),
                    };
                    match mv.bucket {
                        MoveBucket::Pending => m.pending += signed,
                        MoveBucket::Available => m.available += signed,
                    }
                    prop_assert!(m.pending >= 0, "pending went negative: {m:?}");
                }
                m.so_far = after_moves(m.so_far, &moves);
                prop_assert_eq!(m.so_far.total(), target);
            }
        }
        let taken = taken_back(charge, &latest(&refunds), &latest(&disputes));
        prop_assert!(taken <= charge);
        for (m, &commission) in models.iter().zip(&commissions) {
            let target = reversal_target(commission, taken, charge);
            prop_assert!((0..=commission).contains(&target));
            // The books balance: what is left is the commission less what was taken back.
            prop_assert_eq!(m.pending + m.available, commission - target, "{:?}", m);
            prop_assert!(m.released, "the release was delivered");
            prop_assert_eq!(m.pending, 0);
        }
    }
}
