//! Function processes: the environment Lambda gives them, spawning with prefixed output, and the
//! supervisors: one per function, that starts an instance whenever invocations wait for one (up
//! to the function's concurrency), and one per instance, that restarts a crashed process and
//! reloads a rebuilt binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use crate::error::DevgwError;
use crate::runtime::{self, FunctionChannel, Generation, Instance, Outcome, Status};
use crate::{Shutdown, REGION};

/// What is needed to start one function's process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub name: String,
    pub binary: PathBuf,
    pub memory_mb: u32,
    /// Variables beyond Lambda's own (already resolved; they override devgw's environment).
    pub env: Vec<(String, String)>,
    /// Width of the name column in the log prefix.
    pub log_width: usize,
    /// Which instance of the function (0: the first); others log as `name#1`, `name#2`, ...
    pub instance: usize,
}

/// The variables Lambda sets for a `provided.al2023` function (those `lambda_runtime` reads, and
/// the documented others).
pub fn lambda_env(name: &str, memory_mb: u32, runtime_api: &str) -> Vec<(String, String)> {
    let today = chrono::Utc::now().format("%Y/%m/%d");
    let stream = uuid::Uuid::new_v4().simple().to_string();
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| REGION.to_string());
    vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), name.to_string()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{name}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!("{today}/[$LATEST]{stream}"),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("_HANDLER".into(), "bootstrap".into()),
        ("AWS_REGION".into(), region.clone()),
        ("AWS_DEFAULT_REGION".into(), region),
    ]
}

/// Start the binary against the Runtime API at `runtime_api`. Output lines are printed as
/// `name | line`. The process is killed when the returned child is dropped.
pub fn spawn(spec: &ProcessSpec, runtime_api: &str, output: Output) -> Result<Child, DevgwError> {
    let mut cmd = Command::new(&spec.binary);
    cmd.envs(lambda_env(&spec.name, spec.memory_mb, runtime_api))
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Its own process group: Ctrl-C in the terminal stops devgw, which then stops the functions,
    // instead of the functions dying first and being restarted.
    #[cfg(unix)]
    cmd.process_group(0);
    match output {
        Output::Prefixed => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Output::Discard => {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        }
    }
    let mut child = cmd.spawn().map_err(|source| DevgwError::Spawn {
        path: spec.binary.clone(),
        source,
    })?;
    if output == Output::Prefixed {
        let label = match spec.instance {
            0 => spec.name.clone(),
            n => format!("{}#{n}", spec.name),
        };
        let prefix = format!("{label:>w$} |", w = spec.log_width);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(print_lines(out, prefix.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(print_lines(err, prefix));
        }
    }
    Ok(child)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Print every line as `name | line`.
    Prefixed,
    /// Drop stdout; keep stderr piped for the caller (benchmarks).
    Discard,
}

async fn print_lines(r: impl AsyncRead + Unpin, prefix: String) {
    use std::io::Write;
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                // A closed stdout must not stop the function: its pipe is still drained.
                let _ = writeln!(std::io::stdout().lock(), "{prefix} {line}");
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading function output");
                break;
            }
        }
    }
}

/// Which file to run: `binary` under `bin_dir`, a path with `/` relative to `root`, or one of
/// the alternative names if only that one was built.
pub fn resolve_binary(
    binary: &str,
    alternatives: &[String],
    bin_dir: &Path,
    root: &Path,
) -> PathBuf {
    if binary.contains('/') {
        return root.join(binary);
    }
    let primary = bin_dir.join(binary);
    if primary.exists() {
        return primary;
    }
    alternatives
        .iter()
        .map(|a| bin_dir.join(a))
        .find(|p| p.exists())
        .unwrap_or(primary)
}

fn stamp(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

enum Ended {
    Exited(String),
    Killed(&'static str),
    Reload,
    Shutdown,
}

/// Run the function's instances until `shutdown` turns true: the first one at once (so that the
/// function is ready when devgw is), another one whenever more invocations are outstanding than
/// there are instances, up to `chan.concurrency` (Lambda's cold starts). Instances stay until
/// devgw stops.
pub async fn supervise(chan: Arc<FunctionChannel>, spec: ProcessSpec, mut shutdown: Shutdown) {
    let mut instances = JoinSet::new();
    let first = chan.add_instance();
    instances.spawn(supervise_instance(
        chan.clone(),
        first,
        spec.clone(),
        shutdown.clone(),
    ));
    while chan.concurrency > 1 && !shutdown.is_set() {
        tokio::select! {
            _ = chan.scale_requested() => {}
            _ = shutdown.wait() => break,
        }
        while chan.wants_instance() && !shutdown.is_set() {
            let instance = chan.add_instance();
            tracing::info!(
                function = %spec.name,
                "starting instance #{} (of at most {}): {} invocation(s) outstanding",
                instance.index,
                chan.concurrency,
                chan.outstanding()
            );
            let spec = ProcessSpec {
                instance: instance.index,
                ..spec.clone()
            };
            instances.spawn(supervise_instance(
                chan.clone(),
                instance,
                spec,
                shutdown.clone(),
            ));
        }
    }
    while instances.join_next().await.is_some() {}
}

/// Keep one process of the instance running until `shutdown` turns true: start it, restart it
/// (with a growing pause) when it exits, restart it when its binary is rebuilt, and fail the
/// invocation it was handling when it dies.
async fn supervise_instance(
    chan: Arc<FunctionChannel>,
    instance: Arc<Instance>,
    spec: ProcessSpec,
    mut shutdown: Shutdown,
) {
    let mut pause = Duration::from_millis(500);
    loop {
        if shutdown.is_set() {
            break;
        }
        let Some(stamp0) = stamp(&spec.binary) else {
            instance.set_status(Status::Missing(format!(
                "{} does not exist (build it: cargo build --bins)",
                spec.binary.display()
            )));
            tracing::warn!(function = %spec.name, binary = %spec.binary.display(), "binary not built; waiting for it");
            let n = chan
                .fail_queued(&Outcome::error(
                    "Runtime.InvalidEntrypoint",
                    "binary not built",
                ))
                .await;
            if n > 0 {
                tracing::warn!(function = %spec.name, "failed {n} queued invocation(s)");
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait() => {}
                }
                if shutdown.is_set() || stamp(&spec.binary).is_some() {
                    break;
                }
            }
            continue;
        };
        let gen = Generation::new();
        instance.set_generation(Some(gen.clone()));
        instance.set_status(Status::Starting);
        let server = match runtime::start_server(chan.clone(), gen.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(function = %spec.name, error = %e, "cannot start the Runtime API");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        gen.mark_spawned();
        let started = Instant::now();
        let mut child = match spawn(&spec, &server.addr.to_string(), Output::Prefixed) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(function = %spec.name, error = %e, "cannot start");
                instance.set_status(Status::Crashed(e.to_string()));
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        instance.pid.store(
            child.id().unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        );
        tracing::debug!(function = %spec.name, runtime_api = %server.addr, "started");
        let ended = tokio::select! {
            status = child.wait() => Ended::Exited(match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            }),
            _ = gen.kill_requested() => Ended::Killed("timeout"),
            _ = rebuilt(&spec.binary, stamp0, &gen) => Ended::Reload,
            _ = shutdown.wait() => Ended::Shutdown,
        };
        if !matches!(ended, Ended::Exited(_)) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        instance.pid.store(0, std::sync::atomic::Ordering::Relaxed);
        drop(server);
        let reason = match &ended {
            Ended::Exited(s) => format!("Runtime exited with error: {s}"),
            Ended::Killed(why) => format!("Runtime killed ({why})"),
            Ended::Reload => "Runtime restarted: binary rebuilt".to_string(),
            Ended::Shutdown => "devgw stopped".to_string(),
        };
        gen.fail_inflight(|id| {
            Outcome::error(
                "Runtime.ExitError",
                &format!("RequestId: {id} Error: {reason}"),
            )
        });
        if gen.first_next().is_none() && !matches!(ended, Ended::Shutdown) {
            // Died during init: the invocations waiting for it fail, as on Lambda.
            let outcome = gen.init_error().unwrap_or_else(|| {
                Outcome::error("Runtime.ExitError", &format!("init failed: {reason}"))
            });
            let n = chan.fail_queued(&outcome).await;
            if n > 0 {
                tracing::warn!(function = %spec.name, "failed {n} queued invocation(s): init failed");
            }
        }
        match ended {
            Ended::Shutdown => break,
            Ended::Reload => {
                tracing::info!(function = %spec.name, "binary rebuilt: restarting");
                pause = Duration::from_millis(500);
            }
            Ended::Exited(_) | Ended::Killed(_) => {
                if started.elapsed() > Duration::from_secs(30) {
                    pause = Duration::from_millis(500);
                }
                tracing::warn!(function = %spec.name, "{reason}; restarting in {:.1} s", pause.as_secs_f64());
                instance.set_status(Status::Crashed(reason));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.wait() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
    instance.set_status(Status::Stopped);
    let _ = chan
        .fail_queued(&Outcome::error("Runtime.Unavailable", "devgw stopped"))
        .await;
}

/// Resolves once the binary has changed on disk and the process is idle.
async fn rebuilt(binary: &Path, first: (SystemTime, u64), gen: &Generation) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(now) = stamp(binary) else { continue };
        if now == first || gen.is_busy() {
            continue;
        }
        // Let the linker finish writing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stamp(binary) == Some(now) && !gen.is_busy() {
            return;
        }
    }
}
