//! `partnerctl`: the operator command.
//!
//! Works against local (moto, `AWS_ENDPOINT_URL`) or real DynamoDB with the usual AWS
//! configuration; the table name comes from `--table` or `TABLE_NAME`.

mod setup;

use clap::{Parser, Subcommand};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error("AWS: {0}")]
    Aws(String),
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

#[derive(Parser, Debug)]
#[command(name = "partnerctl", version, about = "Operate the partner program engine")]
struct Cli {
    /// DynamoDB table name.
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "partner-engine-local")]
    table: String,
    /// Output format.
    #[arg(long, value_enum, global = true, default_value = "table")]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the table and queues of template.yaml (local endpoint) and print queue URLs as env lines.
    SetupLocal {
        /// Prefix of the queue names.
        #[arg(long, default_value = "partner-engine-local")]
        queue_prefix: String,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("partnerctl: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = storage::table::aws_config().await;
    match cli.command {
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
