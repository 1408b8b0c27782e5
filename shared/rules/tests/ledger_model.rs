//! A deliberately naive reference model of partner balances, checked against the crate's
//! ledger (`entry_delta` + `Balance` + `payout_amount`) on random operation sequences.
//!
//! The model does not use deltas: it keeps a list of commissions with a state and a list of
//! payouts, and derives the buckets from them:
//!
//! * pending   = Σ amount of commissions still in hold;
//! * in_payout = Σ payouts reserved and not yet settled;
//! * paid      = Σ payouts sent and not returned;
//! * available = Σ amount of released commissions − in_payout − paid − forfeited
//!   (a clawed-back commission no longer counts, which is what makes `available` negative
//!   when the money was already paid).

use std::collections::BTreeMap;

use proptest::prelude::*;
use rules::{
    entry_delta, payout_amount, Balance, Bucket, CommissionPlan, Currency, Duration, EntryKind,
    Program, Reward,
};
use rust_decimal_macros::dec;

/// (partner, program, currency) books under test; EUR has no configured minimum.
const KEYS: [(&str, &str, Currency); 4] = [
    ("alice", "prog", Currency::USD),
    ("alice", "prog", Currency::JPY),
    ("bob", "prog", Currency::USD),
    ("bob", "prog", Currency::EUR),
];

#[derive(Debug, Clone)]
enum Op {
    /// A sale earned `amount` (goes to hold).
    Earn { key: usize, amount: i64 },
    /// The hold of one pending commission ended.
    Release { key: usize, pick: usize },
    /// A refund / lost dispute of one commission: reversed before release, clawed back after.
    Refund { key: usize, pick: usize },
    /// A re-run of the fold corrected one live commission by `delta`.
    Adjust { key: usize, pick: usize, delta: i64 },
    /// A payout run reserves the available balance in a payout item.
    Payout { key: usize },
    /// The rail settled one item in flight: sent (`paid`) or failed (`payout_released`).
    Settle { key: usize, pick: usize, sent: bool },
    /// The rail returned one sent payout.
    ReturnPayout { key: usize, pick: usize },
    /// The accrual period ran out: a positive balance under the minimum is forfeited.
    Forfeit { key: usize },
}

fn arb_op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        4 => (key.clone(), 1i64..40_000).prop_map(|(key, amount)| Op::Earn { key, amount }),
        3 => (key.clone(), any::<usize>()).prop_map(|(key, pick)| Op::Release { key, pick }),
        2 => (key.clone(), any::<usize>()).prop_map(|(key, pick)| Op::Refund { key, pick }),
        1 => (key.clone(), any::<usize>(), -20_000i64..20_000)
            .prop_map(|(key, pick, delta)| Op::Adjust { key, pick, delta }),
        3 => key.clone().prop_map(|key| Op::Payout { key }),
        3 => (key.clone(), any::<usize>(), any::<bool>())
            .prop_map(|(key, pick, sent)| Op::Settle { key, pick, sent }),
        1 => (key.clone(), any::<usize>()).prop_map(|(key, pick)| Op::ReturnPayout { key, pick }),
        1 => key.prop_map(|key| Op::Forfeit { key }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Released,
    Reversed,
    ClawedBack,
}

#[derive(Debug, Clone)]
struct Commission {
    amount: i64,
    state: State,
}

#[derive(Debug, Clone)]
struct Payout {
    amount: i64,
    state: PayoutState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayoutState {
    InFlight,
    Sent,
    Released,
    Returned,
}

#[derive(Debug, Clone, Default)]
struct Model {
    commissions: Vec<Commission>,
    payouts: Vec<Payout>,
    forfeited: i64,
}

impl Model {
    fn sum(&self, state: State) -> i64 {
        self.commissions
            .iter()
            .filter(|c| c.state == state)
            .map(|c| c.amount)
            .sum()
    }
    fn pending(&self) -> i64 {
        self.sum(State::Pending)
    }
    fn payouts_in(&self, state: PayoutState) -> i64 {
        self.payouts
            .iter()
            .filter(|p| p.state == state)
            .map(|p| p.amount)
            .sum()
    }
    fn in_payout(&self) -> i64 {
        self.payouts_in(PayoutState::InFlight)
    }
    fn paid(&self) -> i64 {
        self.payouts_in(PayoutState::Sent)
    }
    fn available(&self) -> i64 {
        self.sum(State::Released) - self.in_payout() - self.paid() - self.forfeited
    }
    /// Index of the `pick`-th payout (mod count) in `state`.
    fn choose_payout(&self, pick: usize, state: PayoutState) -> Option<usize> {
        let idx: Vec<usize> = (0..self.payouts.len())
            .filter(|i| self.payouts[*i].state == state)
            .collect();
        (!idx.is_empty()).then(|| idx[pick % idx.len()])
    }
    /// Index of the `pick`-th commission (mod count) in one of `states`.
    fn choose(&self, pick: usize, states: &[State]) -> Option<usize> {
        let idx: Vec<usize> = (0..self.commissions.len())
            .filter(|i| states.contains(&self.commissions[*i].state))
            .collect();
        (!idx.is_empty()).then(|| idx[pick % idx.len()])
    }
}

/// The crate's side: balances driven only through `entry_delta`, plus the entry log.
#[derive(Debug, Clone)]
struct Books {
    balance: Balance,
    log: Vec<(EntryKind, i64)>,
}

impl Books {
    fn post(&mut self, kind: EntryKind, amount: i64, bucket: Option<Bucket>) {
        let d = entry_delta(kind, amount, bucket).expect("valid entry");
        self.balance.apply(&d).expect("no overflow");
        self.log.push((kind, amount));
    }
    fn total_of(&self, kind: EntryKind) -> i64 {
        self.log
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, a)| a)
            .sum()
    }
}

fn program(min_usd: i64, min_jpy: i64) -> Program {
    let mut p = Program::new(
        "prog",
        "P",
        CommissionPlan::new(Reward::Percentage { rate: dec!(0.25) }, Duration::Lifetime),
        "https://example.com/",
    );
    p.payout_minimum = BTreeMap::from([(Currency::USD, min_usd), (Currency::JPY, min_jpy)]);
    p.validate().unwrap();
    p
}

/// The model's own idea of the minimum: configured, else not payable.
fn model_minimum(p: &Program, c: Currency) -> Option<i64> {
    p.payout_minimum.get(&c).copied()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ledger_matches_naive_model(
        ops in prop::collection::vec(arb_op(), 1..120),
        min_usd in prop_oneof![Just(0i64), Just(1), Just(2_500), Just(10_000)],
        min_jpy in prop_oneof![Just(0i64), Just(5_000)],
    ) {
        let program = program(min_usd, min_jpy);
        let mut models: Vec<Model> = vec![Model::default(); KEYS.len()];
        let mut books: Vec<Books> = KEYS
            .iter()
            .map(|(_, _, c)| Books { balance: Balance::zero(*c), log: Vec::new() })
            .collect();

        for op in ops {
            match op {
                Op::Earn { key, amount } => {
                    models[key].commissions.push(Commission { amount, state: State::Pending });
                    books[key].post(EntryKind::Earned, amount, None);
                }
                Op::Release { key, pick } => {
                    if let Some(i) = models[key].choose(pick, &[State::Pending]) {
                        let c = &mut models[key].commissions[i];
                        c.state = State::Released;
                        let amount = c.amount;
                        books[key].post(EntryKind::Released, amount, None);
                    }
                }
                Op::Refund { key, pick } => {
                    if let Some(i) = models[key].choose(pick, &[State::Pending, State::Released]) {
                        let c = &mut models[key].commissions[i];
                        let amount = c.amount;
                        if c.state == State::Pending {
                            c.state = State::Reversed;
                            books[key].post(EntryKind::Reversed, amount, None);
                        } else {
                            c.state = State::ClawedBack;
                            books[key].post(EntryKind::ClawedBack, amount, None);
                        }
                    }
                }
                Op::Adjust { key, pick, delta } => {
                    if let Some(i) = models[key].choose(pick, &[State::Pending, State::Released]) {
                        let c = &mut models[key].commissions[i];
                        // A correction never takes a live commission to zero or below (that
                        // would be a reversal, not an adjustment).
                        if delta != 0 && c.amount + delta > 0 {
                            c.amount += delta;
                            let bucket = if c.state == State::Pending {
                                Bucket::Pending
                            } else {
                                Bucket::Available
                            };
                            books[key].post(EntryKind::Adjusted, delta, Some(bucket));
                        }
                    }
                }
                Op::Payout { key } => {
                    let currency = KEYS[key].2;
                    let before = books[key].balance;
                    let got = payout_amount(&program, &before);
                    let avail = models[key].available();
                    let want = match model_minimum(&program, currency) {
                        Some(min) if avail > 0 && avail >= min => Some(avail),
                        _ => None,
                    };
                    prop_assert_eq!(got, want, "payout decision for {:?}", KEYS[key]);
                    if let Some(amount) = got {
                        prop_assert!(amount > 0, "never a zero or negative payout");
                        prop_assert!(amount <= before.available, "never more than available");
                        prop_assert!(before.available > 0, "a negative balance is never paid");
                        models[key].payouts.push(Payout { amount, state: PayoutState::InFlight });
                        books[key].post(EntryKind::PayoutReserved, amount, None);
                    } else if before.available <= 0 {
                        prop_assert_eq!(before.payable(0), None);
                    }
                }
                Op::Settle { key, pick, sent } => {
                    if let Some(i) = models[key].choose_payout(pick, PayoutState::InFlight) {
                        let p = &mut models[key].payouts[i];
                        let (state, kind) = if sent {
                            (PayoutState::Sent, EntryKind::Paid)
                        } else {
                            (PayoutState::Released, EntryKind::PayoutReleased)
                        };
                        p.state = state;
                        let amount = p.amount;
                        books[key].post(kind, amount, None);
                    }
                }
                Op::ReturnPayout { key, pick } => {
                    if let Some(i) = models[key].choose_payout(pick, PayoutState::Sent) {
                        models[key].payouts[i].state = PayoutState::Returned;
                        let amount = models[key].payouts[i].amount;
                        books[key].post(EntryKind::PayoutReturned, amount, None);
                    }
                }
                Op::Forfeit { key } => {
                    let currency = KEYS[key].2;
                    let avail = models[key].available();
                    if let Some(min) = model_minimum(&program, currency) {
                        if avail > 0 && avail < min {
                            models[key].forfeited += avail;
                            books[key].post(EntryKind::Forfeited, avail, Some(Bucket::Available));
                        }
                    }
                }
            }

            for (k, (m, b)) in models.iter().zip(&books).enumerate() {
                let bal = b.balance;
                // Balances equal the model to the cent.
                prop_assert_eq!(
                    (bal.pending, bal.available, bal.in_payout, bal.paid),
                    (m.pending(), m.available(), m.in_payout(), m.paid()),
                    "key {:?}", KEYS[k]
                );
                prop_assert!(bal.pending >= 0 && bal.in_payout >= 0 && bal.paid >= 0);
                // The books balance.
                let identity = b.total_of(EntryKind::Earned)
                    - b.total_of(EntryKind::Reversed)
                    - b.total_of(EntryKind::ClawedBack)
                    - b.total_of(EntryKind::Forfeited)
                    + b.total_of(EntryKind::Adjusted);
                prop_assert_eq!(bal.pending + bal.available + bal.in_payout + bal.paid, identity);
                prop_assert_eq!(bal.total(), identity);
                // Σ reserved − Σ sent − Σ released is what `in_payout` holds.
                prop_assert_eq!(
                    b.total_of(EntryKind::PayoutReserved)
                        - b.total_of(EntryKind::Paid)
                        - b.total_of(EntryKind::PayoutReleased),
                    bal.in_payout
                );
                // Σ payouts sent − Σ returned is what `paid` holds.
                prop_assert_eq!(
                    b.total_of(EntryKind::Paid) - b.total_of(EntryKind::PayoutReturned),
                    bal.paid
                );
            }
        }
    }
}

/// The Ontraport case by hand: $80 waits under the $100 minimum, then a clawback after a paid
/// payout leaves a negative balance that is carried, not paid, and absorbed by later earnings.
#[test]
fn worked_example() {
    let p = program(10_000, 5_000);
    let mut b = Books {
        balance: Balance::zero(Currency::USD),
        log: Vec::new(),
    };
    b.post(EntryKind::Earned, 8_000, None);
    b.post(EntryKind::Released, 8_000, None);
    assert_eq!(payout_amount(&p, &b.balance), None, "$80 < $100");
    b.post(EntryKind::Earned, 2_475, None);
    b.post(EntryKind::Released, 2_475, None);
    assert_eq!(payout_amount(&p, &b.balance), Some(10_475));
    b.post(EntryKind::PayoutReserved, 10_475, None);
    assert_eq!((b.balance.available, b.balance.in_payout), (0, 10_475));
    b.post(EntryKind::Paid, 10_475, None);
    b.post(EntryKind::ClawedBack, 2_475, None);
    assert_eq!(b.balance.available, -2_475);
    assert_eq!(payout_amount(&p, &b.balance), None);
    b.post(EntryKind::Earned, 15_000, None);
    b.post(EntryKind::Released, 15_000, None);
    assert_eq!(payout_amount(&p, &b.balance), Some(12_525));
    assert_eq!(
        (b.balance.pending, b.balance.available, b.balance.paid),
        (0, 12_525, 10_475)
    );
}
