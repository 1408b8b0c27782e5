//! `partnerctl`: the operator command.
//!
//! Works against local (moto, `AWS_ENDPOINT_URL`) or real DynamoDB with the usual AWS
//! configuration; the table name comes from `--table` or `TABLE_NAME`.

use partnerctl::{
    apply, attention, dead_letters, mail, outbox, payouts, setup, show, CliError, Format,
};

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "partnerctl",
    version,
    about = "Operate the partner program engine"
)]
struct Cli {
    /// DynamoDB table name.
    #[arg(
        long,
        env = "TABLE_NAME",
        global = true,
        default_value = "partner-engine-local"
    )]
    table: String,
    /// Output format.
    #[arg(long, value_enum, global = true, default_value = "table")]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply a program file (YAML or JSON; schema: docs/program-file.md). Idempotent.
    Apply {
        file: String,
        /// Validate and show what would be written, without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A customer's binding in a program: partner, cause, history, sales waiting for attribution,
    /// and the customer's refunds and disputes (parked or applied).
    Customer {
        #[arg(long)]
        program: String,
        /// Customer key (Stripe `cus_...` or the merchant's id).
        customer: String,
    },
    /// Assign (or reassign) a customer to a partner by hand, with a reason; the history is kept.
    Assign {
        #[arg(long)]
        program: String,
        #[arg(long)]
        customer: String,
        #[arg(long)]
        partner: String,
        #[arg(long)]
        reason: String,
        /// Who does it (recorded in the history).
        #[arg(long, env = "USER")]
        operator: String,
    },
    /// Flagged self-referrals of a program.
    Flags {
        #[arg(long)]
        program: String,
    },
    /// A partner's balances, commissions and ledger entries per program and currency, and their
    /// e-mail standing; --email-opt-out / --email-opt-in (optional mail: commission earned,
    /// promotions; payout mail is always sent), --clear-email-problem (their mailbox works again
    /// after a bounce or complaint).
    Partner {
        partner: String,
        #[arg(long, conflicts_with = "email_opt_in")]
        email_opt_out: bool,
        #[arg(long)]
        email_opt_in: bool,
        #[arg(long)]
        clear_email_problem: bool,
    },
    /// The mail log: what the notifier sent (time, recipient, subject, text body), skipped and
    /// why, or could not send; today's (UTC) unless --day.
    Mail {
        #[command(subcommand)]
        action: Option<MailAction>,
        /// A UTC day (YYYY-MM-DD) of the log; repeatable.
        #[arg(long)]
        day: Vec<String>,
        #[arg(long)]
        partner: Option<String>,
        /// Only claims never confirmed sent.
        #[arg(long)]
        unconfirmed: bool,
    },
    /// Sales still waiting for attribution (by month, customer or e-mail).
    Unattributed {
        #[arg(long)]
        month: Option<String>,
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Needs-attention records: Stripe events the webhook kept because it could not process
    /// them. Without a subcommand, lists the open ones.
    Attention {
        #[command(subcommand)]
        action: Option<AttentionAction>,
        /// List every record first seen in this month (YYYY-MM), open or closed.
        #[arg(long)]
        month: Option<String>,
    },
    /// Scheduled runs that failed three times and wait in the dead-letter queue. Without a
    /// subcommand, lists them (left on the queue).
    DeadLetters {
        #[command(subcommand)]
        action: Option<DeadLetterAction>,
        /// The queue (the stack's output HousekeepingDeadLetterQueueUrl).
        #[arg(long, env = "HOUSEKEEPING_DEAD_LETTER_QUEUE_URL")]
        queue_url: String,
    },
    /// Unsent outbox messages, with counts per kind (kinds without a consumer queue stay here).
    Outbox {
        /// Only this kind (commission_earned, commission_reversed, partner_invite,
        /// crm_sync_partner, payout_waiting, forfeit_warning, forfeited).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Payout runs: without a subcommand, lists them (state, chunks worked, items, amounts,
    /// waiting balances by reason, finished or not).
    Payouts {
        #[command(subcommand)]
        action: Option<PayoutAction>,
        /// Only this program's runs.
        #[arg(long)]
        program: Option<String>,
    },
    /// Create the table and queues of template.yaml (local endpoint) and print queue URLs as env lines.
    SetupLocal {
        /// Prefix of the queue names.
        #[arg(long, default_value = "partner-engine-local")]
        queue_prefix: String,
    },
}

#[derive(Subcommand, Debug)]
enum MailAction {
    /// Verify a sender in SES: a domain (prints the TXT record to publish) or an address.
    Verify { identity: String },
    /// Messages of a mail dead-letter queue (left there); --redrive moves them back to --to
    /// for the notifier (idempotent: nothing is sent twice that was recorded sent).
    DeadLetters {
        /// The stack's output EmailDeadLetterQueueUrl (or MailEventsDeadLetterQueueUrl).
        #[arg(long, env = "EMAIL_DEAD_LETTER_QUEUE_URL")]
        queue_url: String,
        #[arg(long)]
        redrive: bool,
        /// Where --redrive sends them: the e-mail queue (or the mail-events queue).
        #[arg(long, env = "EMAIL_QUEUE_URL")]
        to: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum PayoutAction {
    /// One run (PROGRAM:DATE): its record and summary, its items, the balances that wait and why.
    Show { run: String },
    /// The manual rail: write the run's approved PayPal items as PayPal Payouts Web files
    /// (CSV) into --out and mark them submitted; a second export never repeats an item.
    Export {
        run: String,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Write the files of this earlier export again (a lost file), changing nothing.
        #[arg(long)]
        again: Option<String>,
    },
    /// Settle exported items as PayPal reported them: --sent, --failed REASON (the money is
    /// available again) or --returned REASON (sent, then came back); all partners or --partner.
    Mark {
        run: String,
        #[arg(long)]
        sent: bool,
        #[arg(long, value_name = "REASON")]
        failed: Option<String>,
        #[arg(long, value_name = "REASON")]
        returned: Option<String>,
        /// Only these partners (repeatable).
        #[arg(long)]
        partner: Vec<String>,
        /// The business time of the report (RFC 3339); now when left out.
        #[arg(long)]
        at: Option<String>,
    },
    /// Manual review: approve the run's created or held items (all, or --partner); each is
    /// re-checked against its balance and shrunk or cancelled when money was clawed back since.
    Approve {
        run: String,
        #[command(flatten)]
        review: ReviewArgs,
    },
    /// Manual review: hold the run's created or approved items (neither sent nor released).
    Hold {
        run: String,
        #[command(flatten)]
        review: ReviewArgs,
    },
    /// Manual review: cancel the run's items that have not left (the money is available again).
    Cancel {
        run: String,
        #[command(flatten)]
        review: ReviewArgs,
    },
    /// The run of --program for --date computed and not written: who would be paid what, who
    /// would wait and why, what would be forfeited (a table; --csv FILE writes CSV too).
    Preview {
        #[arg(long)]
        program: String,
        /// The payout date (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// The run's business time (RFC 3339); the schedule's time for the date when left out.
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        csv: Option<std::path::PathBuf>,
    },
    /// A partner's payout standing: --hold REASON (payouts wait, nothing is forfeited),
    /// --release, or --method-unusable REASON (the method on file was rejected; usable again
    /// once the partner's method changes). Without a flag, shows it.
    Partner {
        partner: String,
        #[arg(long, value_name = "REASON")]
        hold: Option<String>,
        #[arg(long)]
        release: bool,
        #[arg(long, value_name = "REASON")]
        method_unusable: Option<String>,
        #[arg(long, env = "USER", default_value = "operator")]
        operator: String,
    },
    /// The automatic rails' open batches (PayPal batches, Stripe transfer groups): id, rail,
    /// run, attempt, the rail's own id, when the poller reads it next, its last note; with an
    /// id, that batch (open or closed) and each item's state.
    Batches { batch: Option<String> },
    /// Payout chunks and schedule runs that failed their retries and wait in
    /// PayoutDeadLetterQueue; --replay works them again (idempotent).
    DeadLetters {
        #[arg(long)]
        replay: bool,
        /// The stack's output PayoutDeadLetterQueueUrl.
        #[arg(long, env = "PAYOUT_DEAD_LETTER_QUEUE_URL")]
        queue_url: String,
        /// The payout queue (a replayed schedule event sends its chunks there).
        #[arg(long, env = "PAYOUT_QUEUE_URL")]
        payout_queue_url: Option<String>,
    },
}

use engine::payout::review::ReviewAction;

#[derive(clap::Args, Debug)]
struct ReviewArgs {
    /// Only these partners (repeatable).
    #[arg(long)]
    partner: Vec<String>,
    /// The business time of any ledger entry (RFC 3339); now when left out.
    #[arg(long)]
    at: Option<String>,
    /// Who does it (recorded on the item).
    #[arg(long, env = "USER", default_value = "operator")]
    operator: String,
}

/// `partnerctl payouts approve | hold | cancel RUN`.
async fn review_command(
    table: storage::Table,
    config: &aws_config::SdkConfig,
    format: Format,
    run: &str,
    review: ReviewArgs,
    action: ReviewAction,
    now: i64,
) -> Result<(), CliError> {
    let at_ms = match &review.at {
        Some(t) => rfc3339_ms("--at", t)?,
        None => now,
    };
    let engine = partnerctl::operator_engine(table, partnerctl::operator_keys()?, config);
    let done = payouts::review(
        &engine,
        run,
        action,
        &review.partner,
        &review.operator,
        at_ms,
    )
    .await?;
    if format == Format::Json {
        println!("{}", serde_json::to_string(&done).unwrap_or_default());
    } else {
        print!("{}", payouts::review_lines(run, &done));
    }
    Ok(())
}

fn rfc3339_ms(flag: &str, t: &str) -> Result<i64, CliError> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .map_err(|e| CliError::Usage(format!("{flag} {t:?}: {e}")))
}

#[derive(Subcommand, Debug)]
enum DeadLetterAction {
    /// Run the failed jobs again at their events' own time (after a fix); each one that
    /// succeeds leaves the queue. Idempotent.
    Replay {
        /// Only this message.
        #[arg(long)]
        message: Option<String>,
        /// The job, when the event's rule does not name one (waiting-sales, release-holds,
        /// outbox-sweep).
        #[arg(long)]
        job: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AttentionAction {
    /// One record with its payload.
    Show { id: String },
    /// Process the record's payload again (after a fix); closes it when processed. Idempotent.
    Replay {
        id: String,
        /// Process an event of an untested Stripe API version (after checking its payload).
        #[arg(long)]
        accept_api_version: bool,
        /// Who does it (recorded on the record).
        #[arg(long, env = "USER", default_value = "operator")]
        operator: String,
    },
    /// Close the record without replaying it.
    Dismiss {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "operator")]
        operator: String,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("partnerctl: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = storage::table::aws_config().await;
    let table = || storage::Table::new(aws_sdk_dynamodb::Client::new(&config), cli.table.clone());
    match cli.command {
        Command::Apply { file, dry_run } => {
            let text = std::fs::read_to_string(&file).map_err(|source| CliError::Io {
                path: file.clone(),
                source,
            })?;
            let plan = apply::parse(&text)?;
            if dry_run {
                for (what, _) in &plan.items {
                    println!("would apply {what}");
                }
                return Ok(());
            }
            let r = apply::apply(&table(), plan).await?;
            for c in &r.created {
                println!("created {c}");
            }
            for u in &r.updated {
                println!("updated {u}");
            }
            println!(
                "{} created, {} updated, {} unchanged",
                r.created.len(),
                r.updated.len(),
                r.unchanged
            );
        }
        Command::Customer { program, customer } => print!(
            "{}",
            show::customer(&table(), cli.format, &program, &customer).await?
        ),
        Command::Assign {
            program,
            customer,
            partner,
            reason,
            operator,
        } => {
            // Manual assignment verifies no click id.
            let engine =
                partnerctl::operator_engine(table(), partnerctl::operator_keys()?, &config);
            let now = now_ms();
            let req = engine::attribution::BindRequest {
                program_id: Some(program.clone()),
                customer_key: customer.clone(),
                email: None,
                source: engine::attribution::BindSource::Manual {
                    partner_id: partner,
                    reason,
                    operator: operator.clone(),
                },
                at_ms: now,
                source_event: format!("operator:{operator}"),
            };
            match engine::attribution::bind(&engine, req)
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?
            {
                engine::attribution::BindOutcome::Bound { partner_id, .. } => {
                    println!("customer {customer} in {program} is now with {partner_id}")
                }
                engine::attribution::BindOutcome::AlreadyBound { partner_id, .. } => {
                    println!("customer {customer} in {program} already is with {partner_id}")
                }
                engine::attribution::BindOutcome::Rejected(r) => {
                    return Err(CliError::Usage(format!("refused: {r}")))
                }
            }
        }
        Command::Attention { action, month } => match action {
            None => print!(
                "{}",
                attention::list(&table(), cli.format, month.as_deref()).await?
            ),
            Some(AttentionAction::Show { id }) => {
                print!("{}", attention::show(&table(), cli.format, &id).await?)
            }
            Some(AttentionAction::Replay {
                id,
                accept_api_version,
                operator,
            }) => match attention::replay(&table(), &id, accept_api_version, &operator).await? {
                attention::Replayed::Resolved { outcome, detail } => {
                    println!("{id}: processed ({outcome}: {detail}); record resolved")
                }
                attention::Replayed::StillNeedsAttention { detail } => {
                    println!("{id}: still needs attention: {detail}");
                    std::process::exit(3);
                }
            },
            Some(AttentionAction::Dismiss {
                id,
                reason,
                operator,
            }) => {
                attention::dismiss(&table(), &id, &reason, &operator).await?;
                println!("{id}: dismissed");
            }
        },
        Command::Flags { program } => {
            print!("{}", show::flags(&table(), cli.format, &program).await?)
        }
        Command::Partner {
            partner,
            email_opt_out,
            email_opt_in,
            clear_email_problem,
        } => {
            let t = table();
            if email_opt_out || email_opt_in {
                storage::mail::set_opt_out(&t, &partner, email_opt_out).await?;
            }
            if clear_email_problem {
                storage::mail::clear_problem(&t, &partner).await?;
            }
            print!("{}", show::partner(&t, cli.format, &partner).await?)
        }
        Command::Mail {
            action,
            day,
            partner,
            unconfirmed,
        } => match action {
            None => {
                let days = if day.is_empty() {
                    vec![storage::mail::day_of(now_ms())]
                } else {
                    day
                };
                let filter = mail::LogFilter {
                    partner,
                    unconfirmed,
                };
                print!("{}", mail::log(&table(), cli.format, &days, &filter).await?)
            }
            Some(MailAction::Verify { identity }) => {
                let ses = aws_sdk_ses::Client::new(&config);
                print!("{}", mail::verify(&ses, &identity).await?)
            }
            Some(MailAction::DeadLetters {
                queue_url,
                redrive,
                to,
            }) => {
                let sqs = aws_sdk_sqs::Client::new(&config);
                let to = match (redrive, to) {
                    (true, Some(t)) => Some(t),
                    (true, None) => {
                        return Err(CliError::Usage(
                            "--redrive needs --to (or EMAIL_QUEUE_URL)".into(),
                        ))
                    }
                    (false, _) => None,
                };
                print!(
                    "{}",
                    mail::dead_letters(&sqs, cli.format, &queue_url, to.as_deref()).await?
                )
            }
        },
        Command::Unattributed {
            month,
            customer,
            email,
        } => {
            print!(
                "{}",
                show::unattributed(
                    &table(),
                    cli.format,
                    month.as_deref(),
                    customer.as_deref(),
                    email.as_deref()
                )
                .await?
            )
        }
        Command::DeadLetters { action, queue_url } => {
            let sqs = aws_sdk_sqs::Client::new(&config);
            match action {
                None => print!(
                    "{}",
                    dead_letters::list(&sqs, &queue_url, cli.format).await?
                ),
                Some(DeadLetterAction::Replay { message, job }) => {
                    let job = job
                        .as_deref()
                        .map(housekeeping::Job::parse)
                        .transpose()
                        .map_err(|e| CliError::Usage(e.to_string()))?;
                    let engine =
                        partnerctl::operator_engine(table(), partnerctl::operator_keys()?, &config);
                    let done =
                        dead_letters::replay(&sqs, &queue_url, &engine, message.as_deref(), job)
                            .await?;
                    let mut failed = false;
                    for r in &done {
                        match r {
                            dead_letters::Replayed::Done { message_id, report } => println!(
                                "{message_id}: done {}",
                                serde_json::to_string(report).unwrap_or_default()
                            ),
                            dead_letters::Replayed::Failed { message_id, why } => {
                                failed = true;
                                println!("{message_id}: failed again, kept: {why}")
                            }
                        }
                    }
                    if done.is_empty() {
                        println!("no dead letters to replay");
                    }
                    if failed {
                        std::process::exit(3);
                    }
                }
            }
        }
        Command::Outbox { kind } => {
            print!(
                "{}",
                outbox::outbox(&table(), cli.format, kind.as_deref()).await?
            )
        }
        Command::Payouts { action, program } => {
            let now = now_ms();
            match action {
                None => print!(
                    "{}",
                    payouts::list(&table(), cli.format, program.as_deref()).await?
                ),
                Some(PayoutAction::Show { run }) => {
                    print!("{}", payouts::show(&table(), cli.format, &run).await?)
                }
                Some(PayoutAction::Export { run, out, again }) => {
                    let engine =
                        partnerctl::operator_engine(table(), partnerctl::operator_keys()?, &config);
                    let done = payouts::export(&engine, &run, &out, again.as_deref(), now).await?;
                    if cli.format == Format::Json {
                        println!("{}", serde_json::to_string(&done).unwrap_or_default());
                    } else if done.items == 0 {
                        println!("{run}: nothing to export (no approved PayPal items)");
                    } else {
                        println!(
                            "{run}: export {} of {} items; upload to PayPal Payouts, then `partnerctl payouts mark {run} --sent`:",
                            done.export_id, done.items
                        );
                        for f in &done.files {
                            println!("  {f}");
                        }
                    }
                }
                Some(PayoutAction::Mark {
                    run,
                    sent,
                    failed,
                    returned,
                    partner,
                    at,
                }) => {
                    let mark = match (sent, failed, returned) {
                        (true, None, None) => engine::payout::export::Mark::Sent,
                        (false, Some(reason), None) => {
                            engine::payout::export::Mark::Failed { reason }
                        }
                        (false, None, Some(reason)) => {
                            engine::payout::export::Mark::Returned { reason }
                        }
                        _ => {
                            return Err(CliError::Usage(
                                "say one of --sent, --failed REASON, --returned REASON".into(),
                            ))
                        }
                    };
                    let at_ms = match at {
                        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                            .map_err(|e| CliError::Usage(format!("--at {t:?}: {e}")))?
                            .timestamp_millis(),
                        None => now,
                    };
                    let engine =
                        partnerctl::operator_engine(table(), partnerctl::operator_keys()?, &config);
                    let moved = payouts::mark(&engine, &run, &mark, &partner, at_ms).await?;
                    if cli.format == Format::Json {
                        println!("{}", serde_json::to_string(&moved).unwrap_or_default());
                    } else {
                        for i in &moved {
                            println!(
                                "{} {} {}",
                                i.partner_id,
                                partnerctl::show::money(i.amount, i.currency),
                                serde_json::to_value(i.state)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_default()
                            );
                        }
                        println!("{run}: {} items moved", moved.len());
                    }
                }
                Some(PayoutAction::Approve { run, review }) => {
                    review_command(
                        table(),
                        &config,
                        cli.format,
                        &run,
                        review,
                        ReviewAction::Approve,
                        now,
                    )
                    .await?
                }
                Some(PayoutAction::Hold { run, review }) => {
                    review_command(
                        table(),
                        &config,
                        cli.format,
                        &run,
                        review,
                        ReviewAction::Hold,
                        now,
                    )
                    .await?
                }
                Some(PayoutAction::Cancel { run, review }) => {
                    review_command(
                        table(),
                        &config,
                        cli.format,
                        &run,
                        review,
                        ReviewAction::Cancel,
                        now,
                    )
                    .await?
                }
                Some(PayoutAction::Preview {
                    program,
                    date,
                    at,
                    csv,
                }) => {
                    let at_ms = at.as_deref().map(|t| rfc3339_ms("--at", t)).transpose()?;
                    let engine =
                        partnerctl::operator_engine(table(), partnerctl::operator_keys()?, &config);
                    let p = payouts::preview(&engine, &program, &date, at_ms).await?;
                    if let Some(path) = csv {
                        std::fs::write(&path, payouts::preview_csv(&p))
                            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
                    }
                    if cli.format == Format::Json {
                        println!("{}", serde_json::to_string(&p).unwrap_or_default());
                    } else {
                        print!("{}", payouts::preview_table(&p));
                    }
                }
                Some(PayoutAction::Partner {
                    partner,
                    hold,
                    release,
                    method_unusable,
                    operator,
                }) => {
                    let change = match (hold, release, method_unusable) {
                        (Some(r), false, None) => Some(payouts::StandingChange::Hold(r)),
                        (None, true, None) => Some(payouts::StandingChange::Release),
                        (None, false, Some(r)) => Some(payouts::StandingChange::MethodUnusable(r)),
                        (None, false, None) => None,
                        _ => return Err(CliError::Usage(
                            "say at most one of --hold REASON, --release, --method-unusable REASON"
                                .into(),
                        )),
                    };
                    let standing = match change {
                        Some(c) => payouts::standing(&table(), &partner, c, &operator, now).await?,
                        None => storage::partners::payout_standing(&table(), &partner).await?,
                    };
                    println!("{}", serde_json::to_string(&standing).unwrap_or_default());
                }
                Some(PayoutAction::Batches { batch }) => print!(
                    "{}",
                    payouts::batches(&table(), cli.format, batch.as_deref(), now).await?
                ),
                Some(PayoutAction::DeadLetters {
                    replay,
                    queue_url,
                    payout_queue_url,
                }) => {
                    let sqs = aws_sdk_sqs::Client::new(&config);
                    if !replay {
                        print!(
                            "{}",
                            payouts::dead_letters(&sqs, &queue_url, cli.format).await?
                        );
                    } else {
                        let engine = partnerctl::operator_engine(
                            table(),
                            partnerctl::operator_keys()?,
                            &config,
                        );
                        let queue = payout_queue_url.map(|u| engine::payout::SqsChunkQueue {
                            sqs: sqs.clone(),
                            queue_url: u,
                        });
                        let (lines, failed) =
                            payouts::replay_dead_letters(&sqs, &queue_url, &engine, queue.as_ref())
                                .await?;
                        for l in lines {
                            println!("{l}");
                        }
                        if failed {
                            std::process::exit(3);
                        }
                    }
                }
            }
        }
        Command::SetupLocal { queue_prefix } => {
            if std::env::var("AWS_ENDPOINT_URL").is_err() {
                return Err(CliError::Usage("setup-local needs AWS_ENDPOINT_URL (the local moto server); in AWS the table comes from template.yaml".into()));
            }
            for (env, url) in setup::setup_local(&config, &cli.table, &queue_prefix).await? {
                println!("{env}={url}");
            }
        }
    }
    Ok(())
}

/// The operator's clock (technical time; the business time of an operator's action).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
