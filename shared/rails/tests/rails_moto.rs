//! The automatic rails against moto (the ledger) and the local fakes of PayPal Payouts and
//! Stripe Connect (what the outside world received): money leaves exactly once, comes back
//! once, and a process that dies after any rail call or any DynamoDB write changes neither.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{NaiveDate, TimeZone, Utc};
use engine::payout::handover::{self, POLL_PENDING_MS, POLL_WATCH_MS};
use engine::payout::rail::{Rail, RailAnswer, RailError, Rails};
use engine::payout::{run, worker};
use engine::Engine;
use fakerails::paypal::{FakePayPal, ReceiverRule, Route};
use fakerails::stripe::FakeStripeConnect;
use fakerails::Fault;
use rails::http::Http;
use rails::paypal::{Credentials, PayPal};
use rails::stripe_connect::StripeConnect;
use rules::program::{Duration, Reward};
use rules::{Currency, PayoutItemState, PayoutMethod};
use storage::payouts::{self, PayoutItem};
use storage::rail_batches::RailBatch;
use storage::{attention, ledger, partners, ManualClock};
use testkit::catalogue;
use testkit::engine::*;
use testkit::faults::{faulty_engine, RecordingQueue, Steps};

const DATE: &str = "2026-04-10";

/// Friday 2026-04-10 00:15 UTC: past the 90-day hold of the sales of T0 + 1 day.
fn friday() -> i64 {
    Utc.with_ymd_and_hms(2026, 4, 10, 0, 15, 0)
        .unwrap()
        .timestamp_millis()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Setup {
    w: World,
    clock: ManualClock,
    steps: Steps,
    /// The engine of the functions: its writes are steps, its clock is `clock`.
    engine: Engine,
    paypal: FakePayPal,
    stripe: FakeStripeConnect,
    rails: Rails,
}

/// A rail that dies (answers an error) right after the armed step, which a call to the
/// inner rail counts as: the call took effect, the process did not learn its answer.
struct Dying<R> {
    inner: R,
    steps: Steps,
}

#[async_trait::async_trait]
impl<R: Rail> Rail for Dying<R> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn carries(&self, m: &PayoutMethod) -> bool {
        self.inner.carries(m)
    }
    fn batch_limit(&self) -> usize {
        self.inner.batch_limit()
    }
    fn watch_ms(&self) -> i64 {
        self.inner.watch_ms()
    }
    fn resend_window_ms(&self) -> Option<i64> {
        self.inner.resend_window_ms()
    }
    async fn hand_over(&self, b: &RailBatch, open: &[bool]) -> Result<RailAnswer, RailError> {
        let a = self.inner.hand_over(b, open).await;
        if self.steps.step() {
            return Err(RailError::Unavailable(
                "process died after the rail call".into(),
            ));
        }
        a
    }
    async fn status(&self, b: &RailBatch) -> Result<RailAnswer, RailError> {
        let a = self.inner.status(b).await;
        if self.steps.step() {
            return Err(RailError::Unavailable(
                "process died after the rail call".into(),
            ));
        }
        a
    }
}

async fn setup() -> Setup {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    let clock = ManualClock::at(T0);
    let steps = Steps::default();
    let engine = faulty_engine(&w.engine, &steps, &clock);
    let paypal = FakePayPal::start(loopback(), "client-1", "secret-1")
        .await
        .expect("fake PayPal");
    let stripe = FakeStripeConnect::start(loopback(), "sk_test_1")
        .await
        .expect("fake Stripe");
    // A short timeout, so that the fakes' time-out faults are met quickly.
    let http = Http::new(StdDuration::from_millis(1_500), Arc::new(clock.clone())).unwrap();
    let rails = Rails::new(vec![
        Arc::new(Dying {
            inner: PayPal::new(
                http.clone(),
                &paypal.base_url,
                Credentials {
                    client_id: "client-1".into(),
                    secret: "secret-1".into(),
                },
            ),
            steps: steps.clone(),
        }),
        Arc::new(Dying {
            inner: StripeConnect::new(http, &stripe.base_url, "sk_test_1"),
            steps: steps.clone(),
        }),
    ]);
    Setup {
        w,
        clock,
        steps,
        engine,
        paypal,
        stripe,
        rails,
    }
}

impl Setup {
    async fn sale(&self, case: &str, partner: &str, total: i64) {
        self.w
            .customer_of_pays(case, partner, T0 + DAY, total)
            .await;
    }
    async fn method(&self, partner: &str, method: PayoutMethod) {
        let mut p = catalogue::partner(partner);
        p.payout_method = method;
        self.w
            .t()
            .put(partners::partner_item(&p).unwrap())
            .await
            .unwrap();
    }
    /// The schedule and its chunks, as the functions run them; a chunk whose worker failed
    /// goes back on the queue.
    async fn run(&self, q: &RecordingQueue, date: NaiveDate, at_ms: i64) -> Result<(), String> {
        run::run_program(&self.engine, q, "demo", date, at_ms, "schedule")
            .await
            .map_err(|e| e.to_string())?;
        self.work(q).await
    }
    async fn work(&self, q: &RecordingQueue) -> Result<(), String> {
        for m in q.take() {
            if let Err(e) = worker::work_chunk(&self.engine, &self.rails, &m).await {
                q.put_back(m);
                return Err(e.to_string());
            }
        }
        Ok(())
    }
    async fn friday(&self) {
        let q = RecordingQueue::default();
        self.run(&q, NaiveDate::from_ymd_opt(2026, 4, 10).unwrap(), friday())
            .await
            .expect("run");
    }
    /// The poller, `after` later.
    async fn poll_after(&self, after_ms: i64) -> Vec<handover::BatchReport> {
        self.clock
            .advance(StdDuration::from_millis(after_ms as u64));
        handover::poll_due(&self.engine, &self.rails, "poller", 50)
            .await
            .expect("poll")
    }
    async fn items(&self) -> Vec<PayoutItem> {
        payouts::run_items(self.w.t(), "demo", DATE).await.unwrap()
    }
    async fn states(&self) -> Vec<(String, PayoutItemState)> {
        self.items()
            .await
            .into_iter()
            .map(|i| (i.partner_id, i.state))
            .collect()
    }
    async fn buckets(&self, partner: &str) -> (i64, i64, i64, i64) {
        let b = ledger::balance(self.w.t(), partner, "demo", Currency::USD)
            .await
            .unwrap();
        (b.pending, b.available, b.in_payout, b.paid)
    }
    async fn unusable(&self, partner: &str) -> Option<String> {
        partners::payout_standing(self.w.t(), partner)
            .await
            .unwrap()
            .unusable
            .map(|u| u.reason)
    }
}

fn sent(p: &str) -> (String, PayoutItemState) {
    (p.to_string(), PayoutItemState::Sent)
}

#[tokio::test]
async fn paypal_pays_each_partner_once_in_one_recorded_batch() {
    let s = setup().await;
    s.sale("a1", "alice", 49_900).await;
    s.sale("b1", "bob", 99_900).await;
    s.friday().await;
    // One POST, the batch id as sender_batch_id and PayPal-Request-Id, the item ids as
    // sender_item_id, PayPal's amount strings.
    let posts: Vec<_> = s
        .paypal
        .received()
        .into_iter()
        .filter(|r| r.path == "/v1/payments/payouts" && r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    let body = &posts[0].body;
    let items = s.items().await;
    let batch_id = items[0].rail_batch.clone().expect("batch on the item");
    assert_eq!(
        body["sender_batch_header"]["sender_batch_id"],
        batch_id.as_str()
    );
    assert!(posts[0]
        .headers
        .contains(&("paypal-request-id".to_string(), batch_id.clone())));
    let mut sent_items: Vec<(String, String)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["sender_item_id"].as_str().unwrap().to_string(),
                i["amount"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    sent_items.sort();
    assert_eq!(
        sent_items,
        vec![
            ("demo:2026-04-10:alice:USD".into(), "124.75".into()),
            ("demo:2026-04-10:bob:USD".into(), "249.75".into()),
        ]
    );
    // Submitted until PayPal says SUCCESS: the poller reads it 15 minutes later.
    assert!(items.iter().all(|i| i.state == PayoutItemState::Submitted));
    let reports = s.poll_after(POLL_PENDING_MS + 1).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].sent, 2);
    assert_eq!(s.states().await, vec![sent("alice"), sent("bob")]);
    assert_eq!(s.buckets("alice").await, (0, 0, 0, 12_475));
    assert_eq!(s.buckets("bob").await, (0, 0, 0, 24_975));
    // One token for every call (cached on the injected clock).
    assert_eq!(s.paypal.tokens_issued(), 1);
    // Nothing is read again before its time; the batch stays watched once a day.
    assert!(s.poll_after(60_000).await.is_empty());
    let watched = s.poll_after(POLL_WATCH_MS).await;
    assert_eq!(watched.len(), 1, "read daily for money coming back");
    assert_eq!(s.paypal.items_by_sender_item_id().values().max(), Some(&1));
}

#[tokio::test]
async fn money_that_comes_back_is_available_once_and_the_receiver_is_not_paid_again() {
    let s = setup().await;
    s.sale("a1", "alice", 49_900).await;
    s.sale("b1", "bob", 99_900).await;
    s.sale("c1", "carol", 99_900).await;
    s.paypal.set_receiver(
        "bob@partners.test",
        ReceiverRule::Failed {
            error: "RECEIVER_UNREGISTERED".into(),
        },
    );
    s.paypal
        .set_receiver("carol@partners.test", ReceiverRule::Unclaimed);
    s.friday().await;
    s.poll_after(POLL_PENDING_MS + 1).await;
    assert_eq!(
        s.states().await,
        vec![
            sent("alice"),
            ("bob".into(), PayoutItemState::Failed),
            ("carol".into(), PayoutItemState::Submitted), // UNCLAIMED: not final
        ]
    );
    // bob: released before it left, told why, receiver marked unusable.
    assert_eq!(s.buckets("bob").await, (0, 24_975, 0, 0));
    assert!(s
        .unusable("bob")
        .await
        .unwrap()
        .contains("RECEIVER_UNREGISTERED"));
    // alice's money is reversed later; carol's unclaimed payout returns after 30 days.
    assert!(s.paypal.move_item("demo:2026-04-10:alice:USD", "REVERSED"));
    assert!(s.paypal.move_item("demo:2026-04-10:carol:USD", "RETURNED"));
    s.poll_after(POLL_WATCH_MS).await;
    s.poll_after(POLL_WATCH_MS).await; // read again: booked once
    assert_eq!(
        s.states().await,
        vec![
            ("alice".into(), PayoutItemState::Returned),
            ("bob".into(), PayoutItemState::Failed),
            ("carol".into(), PayoutItemState::Failed),
        ]
    );
    assert_eq!(s.buckets("alice").await, (0, 12_475, 0, 0));
    assert_eq!(s.buckets("carol").await, (0, 24_975, 0, 0));
    let entries = s.w.entries("alice", "demo").await;
    assert_eq!(
        entries
            .iter()
            .filter(|(k, _)| k == "payout_returned")
            .count(),
        1,
        "{entries:?}"
    );
    for p in ["alice", "bob", "carol"] {
        assert!(s.unusable(p).await.is_some(), "{p}");
    }
    // The next Friday's run pays none of them to the same receivers.
    let q = RecordingQueue::default();
    let next = Utc
        .with_ymd_and_hms(2026, 4, 17, 0, 15, 0)
        .unwrap()
        .timestamp_millis();
    s.run(&q, NaiveDate::from_ymd_opt(2026, 4, 17).unwrap(), next)
        .await
        .unwrap();
    assert!(payouts::run_items(s.w.t(), "demo", "2026-04-17")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.paypal.batches().len(), 1);
    // The partners were told (payout_failed messages in the outbox).
    // Delivery is the notifier's (tested there): the messages are in the outbox, once each.
    for p in ["alice", "bob", "carol"] {
        let id = format!(
            "payout-{}:demo:2026-04-10:{p}:USD",
            if p == "alice" { "returned" } else { "failed" }
        );
        assert!(
            s.w.t()
                .get(&storage::keys::outbox(&id))
                .await
                .unwrap()
                .is_some(),
            "{id}"
        );
    }
}

#[tokio::test]
async fn paypal_faults_are_retried_under_the_same_ids() {
    for (name, fault) in [
        (
            "5xx",
            Some((Route::CreateBatch, Fault::ServerError { status: 503 })),
        ),
        (
            "error after effect",
            Some((Route::CreateBatch, Fault::ErrorAfterEffect)),
        ),
        (
            "time-out after effect",
            Some((
                Route::CreateBatch,
                Fault::TimeoutAfterEffect { delay_ms: 2_500 },
            )),
        ),
        ("rate limit", Some((Route::Any, Fault::RateLimit))),
        ("forgotten request id", None),
    ] {
        let s = setup().await;
        s.sale("a1", "alice", 49_900).await;
        s.sale("b1", "bob", 99_900).await;
        match fault {
            Some((route, f)) => s.paypal.fault(route, f),
            None => {
                // The batch reaches PayPal but the answer is lost, and PayPal no longer
                // matches the request id: the re-sent batch meets the duplicate error.
                s.paypal.fault(Route::CreateBatch, Fault::ErrorAfterEffect);
                s.paypal.forget_request_ids(true);
            }
        }
        s.friday().await;
        s.poll_after(POLL_PENDING_MS + 1).await;
        s.poll_after(POLL_PENDING_MS + 1).await;
        assert_eq!(s.states().await, vec![sent("alice"), sent("bob")], "{name}");
        let counts = s.paypal.items_by_sender_item_id();
        assert_eq!(counts.len(), 2, "{name}");
        assert!(counts.values().all(|c| *c == 1), "{name}: {counts:?}");
        assert_eq!(s.buckets("bob").await, (0, 0, 0, 24_975), "{name}");
    }
}

#[tokio::test]
async fn a_batch_paypal_never_acknowledged_in_29_days_needs_attention_and_is_not_sent_again() {
    let s = setup().await;
    s.sale("a1", "alice", 49_900).await;
    for _ in 0..200 {
        s.paypal
            .fault(Route::CreateBatch, Fault::ServerError { status: 500 });
    }
    s.friday().await;
    let mut posts = 0;
    for _ in 0..130 {
        s.poll_after(6 * 3_600_000).await;
        posts = s
            .paypal
            .received()
            .iter()
            .filter(|r| r.path == "/v1/payments/payouts")
            .count();
    }
    let after_window = posts;
    s.poll_after(7 * DAY).await;
    let posts_later = s
        .paypal
        .received()
        .iter()
        .filter(|r| r.path == "/v1/payments/payouts")
        .count();
    // Re-sent under the same id every 15 minutes, then every 6 hours, while PayPal failed…
    assert!(after_window > 100, "{after_window} POSTs");
    // …and never after the 29 days.
    assert_eq!(after_window, posts_later, "never re-posted after 29 days");
    assert!(s.paypal.batches().is_empty());
    let item = &s.items().await[0];
    assert_eq!(
        item.state,
        PayoutItemState::Submitted,
        "money stays reserved"
    );
    let rec = attention::get(
        s.w.t(),
        &format!("payout_rail:{}", item.rail_batch.clone().unwrap()),
    )
    .await
    .unwrap()
    .expect("needs-attention record");
    assert_eq!(rec.reason_code, "rail_batch_unacknowledged");
}

#[tokio::test]
async fn stripe_transfers_once_and_waits_out_an_insufficient_platform_balance() {
    let s = setup().await;
    s.method(
        "alice",
        PayoutMethod::StripeConnect {
            account_id: "acct_alice".into(),
        },
    )
    .await;
    s.method(
        "bob",
        PayoutMethod::StripeConnect {
            account_id: "acct_bob".into(),
        },
    )
    .await;
    s.sale("a1", "alice", 49_900).await;
    s.sale("b1", "bob", 99_900).await;
    // The platform holds $200: alice's $124.75 goes, bob's $249.75 waits.
    s.stripe.set_balance("usd", 20_000);
    s.friday().await;
    assert_eq!(
        s.states().await,
        vec![sent("alice"), ("bob".into(), PayoutItemState::Submitted)]
    );
    let items = s.items().await;
    let rec = attention::get(
        s.w.t(),
        &format!("payout_rail:{}", items[1].rail_batch.clone().unwrap()),
    )
    .await
    .unwrap()
    .expect("the operator sees why");
    assert!(
        rec.reason.contains("balance_insufficient"),
        "{}",
        rec.reason
    );
    // Topped up; the next poll lists bob's transfer group (none) and transfers under a new key.
    s.stripe.set_balance("usd", 100_000);
    s.poll_after(POLL_PENDING_MS + 1).await;
    assert_eq!(s.states().await, vec![sent("alice"), sent("bob")]);
    let transfers = s.stripe.transfers();
    assert_eq!(transfers.len(), 2);
    let bob = transfers
        .iter()
        .find(|t| t.destination == "acct_bob")
        .unwrap();
    assert_eq!(bob.amount, 24_975);
    assert_eq!(
        bob.idempotency_key.as_deref(),
        Some("demo:2026-04-10:bob:USD:2")
    );
    assert_eq!(
        bob.transfer_group.as_deref(),
        Some("demo:2026-04-10:bob:USD")
    );
    let keys: Vec<_> = s
        .stripe
        .received()
        .into_iter()
        .filter(|r| r.method == "POST")
        .filter_map(|r| {
            r.headers
                .into_iter()
                .find(|(k, _)| k == "idempotency-key")
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            "demo:2026-04-10:alice:USD:1",
            "demo:2026-04-10:bob:USD:1",
            "demo:2026-04-10:bob:USD:2"
        ]
    );
    assert_eq!(s.buckets("bob").await, (0, 0, 0, 24_975));
}

#[tokio::test]
async fn a_stripe_transfer_whose_answer_was_lost_is_found_not_made_again() {
    for (name, fault) in [
        ("500 stored under the key", Fault::ErrorAfterEffect),
        ("time-out", Fault::TimeoutAfterEffect { delay_ms: 2_500 }),
    ] {
        let s = setup().await;
        s.method(
            "alice",
            PayoutMethod::StripeConnect {
                account_id: "acct_alice".into(),
            },
        )
        .await;
        s.sale("a1", "alice", 49_900).await;
        s.stripe.fault(fault);
        s.friday().await;
        assert_eq!(s.states().await[0].1, PayoutItemState::Submitted, "{name}");
        s.stripe.prune_keys(); // a day later Stripe may have forgotten the key
        s.poll_after(POLL_PENDING_MS + 1).await;
        assert_eq!(s.states().await, vec![sent("alice")], "{name}");
        assert_eq!(s.stripe.transfers().len(), 1, "{name}");
        assert_eq!(s.buckets("alice").await, (0, 0, 0, 12_475), "{name}");
    }
}

#[tokio::test]
async fn a_refused_destination_fails_and_is_marked_unusable() {
    let s = setup().await;
    s.method(
        "alice",
        PayoutMethod::StripeConnect {
            account_id: "acct_alice".into(),
        },
    )
    .await;
    s.sale("a1", "alice", 49_900).await;
    s.stripe.set_capability("acct_alice", "inactive");
    s.friday().await;
    assert_eq!(s.states().await[0].1, PayoutItemState::Failed);
    assert_eq!(s.buckets("alice").await, (0, 12_475, 0, 0));
    assert!(s
        .unusable("alice")
        .await
        .unwrap()
        .contains("insufficient_capabilities_for_transfer"));
}

/// Kill the process after each rail call and each DynamoDB write in turn (the call or write
/// took effect, the process never learned it), then let SQS redeliver, the schedule run again
/// and the poller come by: every partner is paid exactly once (what the fakes received), and
/// the returned item is back in the available balance once.
#[tokio::test]
async fn a_run_that_dies_after_any_rail_call_or_write_pays_exactly_once() {
    for rail in ["paypal", "stripe_connect"] {
        let mut n = 1;
        loop {
            let s = setup().await;
            if rail == "stripe_connect" {
                for p in ["alice", "bob"] {
                    s.method(
                        p,
                        PayoutMethod::StripeConnect {
                            account_id: format!("acct_{p}"),
                        },
                    )
                    .await;
                }
            }
            s.sale("a1", "alice", 49_900).await;
            s.sale("b1", "bob", 99_900).await;
            let q = RecordingQueue::default();
            let friday_date = NaiveDate::from_ymd_opt(2026, 4, 10).unwrap();
            s.steps.arm(n);
            let mut failed = s.run(&q, friday_date, friday()).await.is_err();
            failed |= {
                s.clock
                    .advance(StdDuration::from_millis(POLL_PENDING_MS as u64 + 1));
                handover::poll_due(&s.engine, &s.rails, "poller", 50)
                    .await
                    .is_err()
            };
            let taken = s.steps.taken();
            s.steps.disarm();
            // Redelivery after the visibility timeout, the schedule again, the poller.
            s.clock.advance(StdDuration::from_millis(
                (run::RUN_LEASE_MS.max(handover::BATCH_LEASE_MS) + 1) as u64,
            ));
            s.work(&q).await.expect("redelivered chunk");
            s.run(&q, friday_date, friday()).await.expect("re-run");
            for _ in 0..3 {
                s.poll_after(POLL_PENDING_MS + 1).await;
            }
            assert_eq!(
                s.states().await,
                vec![sent("alice"), sent("bob")],
                "{rail}: fault at step {n}"
            );
            let paid = match rail {
                "paypal" => s.paypal.items_by_sender_item_id(),
                _ => s.stripe.transfers_by_item(),
            };
            assert_eq!(
                paid.into_iter().collect::<Vec<_>>(),
                vec![
                    ("demo:2026-04-10:alice:USD".to_string(), 1),
                    ("demo:2026-04-10:bob:USD".to_string(), 1)
                ],
                "{rail}: fault at step {n}: paid exactly once"
            );
            assert_eq!(
                s.buckets("alice").await,
                (0, 0, 0, 12_475),
                "{rail} step {n}"
            );
            assert_eq!(s.buckets("bob").await, (0, 0, 0, 24_975), "{rail} step {n}");
            if rail == "paypal" {
                // Money coming back, with a death after each step of booking it.
                s.paypal.move_item("demo:2026-04-10:bob:USD", "RETURNED");
                s.steps.arm(1);
                let _ = handover::poll_due(&s.engine, &s.rails, "poller", 50).await;
                s.clock
                    .advance(StdDuration::from_millis(POLL_WATCH_MS as u64));
                s.steps.disarm();
                for _ in 0..2 {
                    s.poll_after(POLL_WATCH_MS).await;
                }
                assert_eq!(
                    s.buckets("bob").await,
                    (0, 24_975, 0, 0),
                    "step {n}: returned once"
                );
            }
            if !failed && taken < n {
                eprintln!("{rail}: {} steps, each failed in turn", n - 1);
                assert!(n > 8, "{rail}: a run has more than eight steps");
                break;
            }
            n += 1;
        }
    }
}
