//! `devgw bench-init`: how long a function binary takes from exec until it asks the local Runtime
//! API for its first event (the init phase Lambda reports as "Init Duration"), over many runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::error::DevgwError;
use crate::process::{self, Output, ProcessSpec};
use crate::runtime::{self, FunctionChannel, Generation, Outcome};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub binary: PathBuf,
    pub name: String,
    pub runs: usize,
    /// Runs made first and not counted (page cache, dynamic loader).
    pub warmup: usize,
    pub memory_mb: u32,
    pub env: Vec<(String, String)>,
    /// Also time the first invocation with this payload.
    pub event: Option<Bytes>,
    /// Longest a run may take.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub runs: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// Nearest-rank percentiles of the samples.
pub fn stats(samples: &[Duration]) -> Option<Stats> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort();
    let rank = |p: usize| {
        // nearest rank: ceil(p/100 * n), 1-based
        let r = (p * s.len()).div_ceil(100).max(1);
        s[r.min(s.len()) - 1]
    };
    let total: Duration = s.iter().sum();
    Some(Stats {
        runs: s.len(),
        min: s[0],
        p50: rank(50),
        p95: rank(95),
        max: s[s.len() - 1],
        mean: total / u32::try_from(s.len()).unwrap_or(u32::MAX),
    })
}

#[derive(Debug, Clone)]
pub struct BenchResult {
    pub init: Stats,
    pub first_invoke: Option<Stats>,
    pub size_bytes: u64,
    /// The first invocation's outcome of the last run (to show what the function answered).
    pub last_outcome: Option<Outcome>,
}

struct Run {
    init: Duration,
    invoke: Option<Duration>,
    outcome: Option<Outcome>,
}

async fn one_run(opts: &BenchOptions) -> Result<Run, DevgwError> {
    let chan = FunctionChannel::new(&opts.name, opts.timeout);
    let gen = Generation::new();
    let server = runtime::start_server(chan.clone(), gen.clone()).await?;
    let spec = ProcessSpec {
        name: opts.name.clone(),
        binary: opts.binary.clone(),
        memory_mb: opts.memory_mb,
        env: opts.env.clone(),
        log_width: 0,
        instance: 0,
    };
    let api = server.addr.to_string();
    gen.mark_spawned();
    let t0 = Instant::now();
    let mut child = process::spawn(&spec, &api, Output::Discard)?;
    // Drain stderr as it comes (a full pipe would stall the function); shown if the run fails.
    let stderr = child.stderr.take().map(|mut e| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = e.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        })
    });
    let first = tokio::select! {
        t = gen.wait_first_next() => Ok(t),
        st = child.wait() => Err(format!("exited before asking for an event: {}", st.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()))),
        _ = tokio::time::sleep(opts.timeout) => Err(format!("no request for an event within {:?}", opts.timeout)),
    };
    let first = match first {
        Ok(t) => t,
        Err(msg) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let err = match stderr {
                Some(h) => h.await.unwrap_or_default(),
                None => String::new(),
            };
            let init_error = gen
                .init_error()
                .map(|o| match o {
                    Outcome::Error { body, .. } => String::from_utf8_lossy(&body).into_owned(),
                    Outcome::Response(_) => String::new(),
                })
                .unwrap_or_default();
            return Err(DevgwError::Bench(format!(
                "{}: {msg}\n{init_error}\n{err}",
                opts.binary.display()
            )));
        }
    };
    let init = first.saturating_duration_since(t0);
    let (invoke, outcome) = match &opts.event {
        Some(ev) => {
            let t1 = Instant::now();
            let o = chan.invoke(ev.clone()).await?;
            (Some(t1.elapsed()), Some(o))
        }
        None => (None, None),
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    drop(server);
    Ok(Run {
        init,
        invoke,
        outcome,
    })
}

pub async fn run(opts: &BenchOptions) -> Result<BenchResult, DevgwError> {
    let size_bytes = std::fs::metadata(&opts.binary)
        .map_err(|source| DevgwError::Io {
            path: opts.binary.clone(),
            source,
        })?
        .len();
    for _ in 0..opts.warmup {
        one_run(opts).await?;
    }
    let mut inits = vec![];
    let mut invokes = vec![];
    let mut last_outcome = None;
    for _ in 0..opts.runs.max(1) {
        let r = one_run(opts).await?;
        inits.push(r.init);
        if let Some(i) = r.invoke {
            invokes.push(i);
        }
        if r.outcome.is_some() {
            last_outcome = r.outcome;
        }
    }
    let init = stats(&inits).ok_or_else(|| DevgwError::Bench("no samples".into()))?;
    Ok(BenchResult {
        init,
        first_invoke: stats(&invokes),
        size_bytes,
        last_outcome,
    })
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

pub fn mib(bytes: u64) -> String {
    // One decimal place of MiB, computed in integers.
    let tenths = (bytes * 10 + 524_288) / 1_048_576;
    format!("{}.{} MiB", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = stats(&samples).expect("samples");
        assert_eq!(s.min, Duration::from_millis(1));
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.runs, 100);
        let one = stats(&[Duration::from_millis(7)]).expect("one");
        assert_eq!(
            (one.p50, one.p95),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert!(stats(&[]).is_none());
    }

    #[test]
    fn sizes() {
        assert_eq!(mib(1_048_576), "1.0 MiB");
        assert_eq!(mib(1_572_864), "1.5 MiB");
        assert_eq!(mib(0), "0.0 MiB");
    }
}
