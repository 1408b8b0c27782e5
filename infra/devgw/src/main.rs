//! `devgw serve | list | bench-init`: see the library documentation.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use devgw::bench::{self, BenchOptions};
use devgw::gateway::{self, GatewayConfig};
use devgw::runtime::Outcome;
use devgw::{template, DevgwError};

#[derive(Parser, Debug)]
#[command(
    name = "devgw",
    version,
    about = "Run the template's functions locally (make dev)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct Sources {
    /// Repository root.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// SAM template, relative to the root.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Local-only functions (same shape as the template's Resources), relative to the root.
    #[arg(long, default_value = "infra/dev/functions.yaml")]
    functions: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve every function on loopback.
    Serve {
        #[command(flatten)]
        sources: Sources,
        /// Port of the gateway.
        #[arg(long, env = "PORT", default_value_t = 9000)]
        port: u16,
        /// Directory of the function binaries, relative to the root.
        #[arg(long, default_value = "target/debug")]
        bin_dir: PathBuf,
        /// `auto`: fire schedules by their expressions; `manual`: only on POST /dev/schedule/{name}.
        #[arg(long, env = "DEVGW_SCHEDULES", default_value = "auto")]
        schedules: ScheduleMode,
        /// Prefix of the local queue names (as created by `partnerctl setup-local`).
        #[arg(
            long,
            env = "DEVGW_QUEUE_PREFIX",
            default_value = "partner-engine-local"
        )]
        queue_prefix: String,
        /// Instances of each function that may run at once (a function's
        /// ReservedConcurrentExecutions can lower it); the first starts with devgw, the others
        /// when invocations queue. 1: one invocation of a function at a time.
        #[arg(
            long,
            env = "DEVGW_CONCURRENCY",
            default_value_t = gateway::DEFAULT_CONCURRENCY,
            value_parser = clap::value_parser!(u16).range(1..)
        )]
        concurrency: u16,
    },
    /// Print the functions devgw finds, as JSON.
    List {
        #[command(flatten)]
        sources: Sources,
    },
    /// Time a function binary's init: exec until its first request for an event.
    BenchInit {
        /// The binary.
        #[arg(long)]
        bin: PathBuf,
        /// Counted runs.
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// Uncounted runs first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Function name given to the process (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// Extra environment, KEY=VALUE (repeatable).
        #[arg(long = "env", value_parser = parse_kv)]
        env: Vec<(String, String)>,
        /// Also time the first invocation with this event file.
        #[arg(long)]
        event: Option<PathBuf>,
        /// Print one markdown table row instead of text.
        #[arg(long)]
        markdown: bool,
        /// Label of the row (default: the function name).
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ScheduleMode {
    Auto,
    Manual,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn functions_file(s: &Sources) -> PathBuf {
    s.root.join(&s.functions)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEVGW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("devgw: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), DevgwError> {
    match cli.command {
        Command::List { sources } => {
            let d = template::discover_files(
                &sources.root.join(&sources.template),
                Some(&functions_file(&sources)),
            )?;
            let text =
                serde_json::to_string_pretty(&d).map_err(|e| DevgwError::Usage(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
        Command::Serve {
            sources,
            port,
            bin_dir,
            schedules,
            queue_prefix,
            concurrency,
        } => {
            let cfg = GatewayConfig {
                template: sources.root.join(&sources.template),
                functions_file: Some(functions_file(&sources)),
                bin_dir: sources.root.join(bin_dir),
                root: sources.root,
                listen: format!("127.0.0.1:{port}"),
                auto_schedules: schedules == ScheduleMode::Auto,
                sqs: true,
                queue_prefix,
                concurrency: usize::from(concurrency),
            };
            // Signal handlers first, so that Ctrl-C during start-up still stops the functions.
            let signal = tokio::spawn(wait_for_signal());
            let running = gateway::start(cfg).await?;
            println!(
                "devgw on http://{} with {} function(s):\n{}",
                running.addr(),
                running.gateway.functions.len(),
                gateway::summary(&running.gateway)
            );
            let gw = running.gateway.clone();
            let ready = tokio::spawn(async move {
                for _ in 0..1200 {
                    if gw.ready() {
                        tracing::info!("all functions initialised");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tracing::warn!("some functions are still starting (see GET /dev/ready)");
            });
            let _ = signal.await;
            ready.abort();
            tracing::info!("stopping");
            running.stop().await;
            Ok(())
        }
        Command::BenchInit {
            bin,
            runs,
            warmup,
            name,
            env,
            event,
            markdown,
            label,
        } => {
            let name = name.unwrap_or_else(|| {
                bin.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "function".into())
            });
            let event = match &event {
                Some(p) => Some(Bytes::from(std::fs::read(p).map_err(|source| {
                    DevgwError::Io {
                        path: p.clone(),
                        source,
                    }
                })?)),
                None => None,
            };
            let opts = BenchOptions {
                binary: bin,
                name: name.clone(),
                runs,
                warmup,
                memory_mb: 128,
                env,
                event,
                timeout: Duration::from_secs(10),
            };
            let r = bench::run(&opts).await?;
            let first = r
                .first_invoke
                .as_ref()
                .map(|s| format!("{} / {}", bench::ms(s.p50), bench::ms(s.p95)))
                .unwrap_or_else(|| "-".into());
            let label = label.unwrap_or_else(|| name.clone());
            if markdown {
                println!(
                    "| {label} | {} | {} | {} | {} | {} | {} | {first} |",
                    r.init.runs,
                    bench::ms(r.init.min),
                    bench::ms(r.init.p50),
                    bench::ms(r.init.p95),
                    bench::ms(r.init.max),
                    bench::mib(r.size_bytes),
                );
            } else {
                println!(
                    "{label}: init (exec -> first GET /runtime/invocation/next) over {} runs: min {} ms, p50 {} ms, p95 {} ms, max {} ms, mean {} ms; binary {} ({} bytes)",
                    r.init.runs,
                    bench::ms(r.init.min),
                    bench::ms(r.init.p50),
                    bench::ms(r.init.p95),
                    bench::ms(r.init.max),
                    bench::ms(r.init.mean),
                    bench::mib(r.size_bytes),
                    r.size_bytes
                );
                if let Some(s) = &r.first_invoke {
                    println!(
                        "{label}: first invocation: min {} ms, p50 {} ms, p95 {} ms",
                        bench::ms(s.min),
                        bench::ms(s.p50),
                        bench::ms(s.p95)
                    );
                }
            }
            if let Some(Outcome::Error { error_type, body }) = &r.last_outcome {
                tracing::warn!(
                    "the benchmark event ended in {error_type}: {}",
                    String::from_utf8_lossy(body)
                );
            }
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
