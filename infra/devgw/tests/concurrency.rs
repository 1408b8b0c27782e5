//! Several instances of one function at once (`DEVGW_CONCURRENCY`): two HTTP requests are in the
//! function at the same moment, in two processes; with a concurrency of 1 (devgw's setting or
//! the function's `ReservedConcurrentExecutions`) they take turns; two SQS batches (against moto,
//! when `AWS_ENDPOINT_URL` is set) are in the function at the same moment too.
//!
//! The function is this test binary itself, so that no other binary has to be built: run by
//! devgw, it finds `AWS_LAMBDA_RUNTIME_API` set and serves as a `lambda_runtime` function whose
//! handler tells the test's hold server its process id and then waits until the test lets it go.
//! The hold server counts the handlers waiting at the same moment, so the outcome never depends
//! on how fast anything runs. `harness = false`: `main` is either the function or the tests.

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{local_sqs, queue_with_messages, records_left, request, temp_dir, Reply};
use devgw::gateway::{self, GatewayConfig, RunningGateway};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

/// The hold server's address, given to the function in its template environment.
const HOLD_VAR: &str = "DEVGW_TEST_HOLD";
/// Ample time for anything that must happen (a process start on a busy machine).
const PATIENCE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return function();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        run("two_requests_run_in_two_instances_at_once", async {
            two_requests_run_in_two_instances_at_once().await
        })
        .await;
        run("concurrency_1_serialises_them", async {
            requests_take_turns(1, None).await
        })
        .await;
        run("reserved_concurrency_1_serialises_them", async {
            requests_take_turns(usize::from(gateway::DEFAULT_CONCURRENCY), Some(1)).await
        })
        .await;
        run("two_sqs_batches_run_at_once", async {
            two_sqs_batches_run_at_once().await
        })
        .await;
    });
    ExitCode::SUCCESS
}

async fn run(name: &str, test: impl std::future::Future<Output = ()>) {
    println!("test {name} ...");
    test.await;
    println!("test {name} ... ok");
}

// --- the function (a process run by devgw) ---

fn function() -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let run = lambda_http::lambda_runtime::run(lambda_http::service_fn(hold));
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("function: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whatever the event (HTTP or SQS): tell the hold server this process's id, wait for its go,
/// answer with the process id as an HTTP response (a success for an SQS batch too).
async fn hold(
    _event: lambda_http::LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_http::Error> {
    let addr = std::env::var(HOLD_VAR)?;
    let mut stream = TcpStream::connect(addr).await?;
    let pid = std::process::id().to_string();
    stream.write_all(format!("{pid}\n").as_bytes()).await?;
    let mut go = String::new();
    BufReader::new(stream).read_line(&mut go).await?;
    Ok(serde_json::json!({ "statusCode": 200, "body": pid }))
}

// --- the hold server (in the test) ---

#[derive(Default)]
struct HoldState {
    /// Handlers waiting for their go: (process id, go).
    waiting: Vec<(u32, oneshot::Sender<()>)>,
    /// Handlers that arrived, in order.
    arrived: Vec<u32>,
    /// The most handlers waiting at the same moment.
    most_at_once: usize,
}

struct Hold {
    addr: SocketAddr,
    state: Arc<Mutex<HoldState>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hold {
    async fn start() -> Hold {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(HoldState::default()));
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, changed) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.is_err() {
                        return;
                    }
                    let pid: u32 = line.trim().parse().expect("a process id");
                    let (go, gone) = oneshot::channel();
                    {
                        let mut st = state.lock().expect("hold state");
                        st.waiting.push((pid, go));
                        st.arrived.push(pid);
                        st.most_at_once = st.most_at_once.max(st.waiting.len());
                    }
                    changed.notify_waiters();
                    if gone.await.is_ok() {
                        let _ = stream.get_mut().write_all(b"go\n").await;
                    }
                });
            }
        });
        Hold {
            addr,
            state,
            changed,
            task,
        }
    }

    /// Wait (at most [`PATIENCE`]) until `check` holds.
    async fn wait_until(&self, what: &str, check: impl Fn(&HoldState) -> bool) {
        let until = Instant::now() + PATIENCE;
        loop {
            let notified = self.changed.notified();
            if check(&self.state.lock().expect("hold state")) {
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not within {PATIENCE:?} ({} waiting, {} arrived)",
                self.waiting(),
                self.arrived().len()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    fn waiting(&self) -> usize {
        self.state.lock().expect("hold state").waiting.len()
    }

    fn arrived(&self) -> Vec<u32> {
        self.state.lock().expect("hold state").arrived.clone()
    }

    fn most_at_once(&self) -> usize {
        self.state.lock().expect("hold state").most_at_once
    }

    /// Let every waiting handler go.
    fn release(&self) {
        let waiting = std::mem::take(&mut self.state.lock().expect("hold state").waiting);
        for (_, go) in waiting {
            let _ = go.send(());
        }
    }
}

// --- the tests ---

/// The hold function behind `GET /hold/{n}`, plus `more` (resources, then events).
fn template(hold: &Hold, reserved: Option<u32>, more: (&str, &str)) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let reserved = reserved
        .map(|n| format!("      ReservedConcurrentExecutions: {n}\n"))
        .unwrap_or_default();
    format!(
        r#"
Resources:
{resources}  HoldFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: "{exe}"
    Properties:
      Timeout: 60
{reserved}      Environment:
        Variables:
          {HOLD_VAR}: "{addr}"
      Events:
        Get:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /hold/{{n}}
{events}"#,
        exe = exe.display(),
        addr = hold.addr,
        resources = more.0,
        events = more.1,
    )
}

async fn start(hold: &Hold, concurrency: usize, reserved: Option<u32>) -> RunningGateway {
    start_with(template(hold, reserved, ("", "")), concurrency, None).await
}

/// Start devgw on `template`; with `queue_prefix`, it polls the template's queues.
async fn start_with(
    template: String,
    concurrency: usize,
    queue_prefix: Option<&str>,
) -> RunningGateway {
    let dir = temp_dir("concurrency");
    let path = dir.join("template.yaml");
    std::fs::write(&path, template).expect("write template");
    let running = gateway::start(GatewayConfig {
        root: dir.clone(),
        template: path,
        functions_file: None,
        bin_dir: dir.clone(),
        listen: "127.0.0.1:0".into(),
        auto_schedules: false,
        sqs: queue_prefix.is_some(),
        queue_prefix: queue_prefix.unwrap_or("unused").into(),
        concurrency,
    })
    .await
    .expect("gateway starts");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(running.wait_ready(PATIENCE).await, "the function starts");
    running
}

fn send(addr: SocketAddr, n: u32) -> tokio::task::JoinHandle<Reply> {
    tokio::spawn(async move { request(addr, "GET", &format!("/hold/{n}"), &[], b"").await })
}

async fn pid_of(reply: tokio::task::JoinHandle<Reply>) -> u32 {
    let r = reply.await.expect("request task");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8_lossy(&r.body)
        .trim()
        .parse()
        .expect("the function answers with its process id")
}

fn instances(gw: &RunningGateway) -> usize {
    gw.gateway.functions[0].chan.instances().len()
}

async fn two_requests_run_in_two_instances_at_once() {
    const {
        assert!(
            gateway::DEFAULT_CONCURRENCY > 1,
            "several instances by default"
        )
    };
    let hold = Hold::start().await;
    let gw = start(&hold, usize::from(gateway::DEFAULT_CONCURRENCY), None).await;
    assert_eq!(instances(&gw), 1, "one instance until invocations queue");

    let (a, b) = (send(gw.addr(), 1), send(gw.addr(), 2));
    // Neither is let go before both are in the function.
    hold.wait_until("both requests in the function at once", |s| {
        s.waiting.len() == 2
    })
    .await;
    hold.release();
    let (pa, pb) = (pid_of(a).await, pid_of(b).await);

    assert_ne!(pa, pb, "two processes handled them");
    assert_eq!(hold.most_at_once(), 2);
    assert_eq!(
        instances(&gw),
        2,
        "a second instance started for the second request"
    );
    let listing = request(gw.addr(), "GET", "/dev/functions", &[], b"")
        .await
        .json();
    let f = &listing["functions"][0];
    assert_eq!(f["concurrency"], u64::from(gateway::DEFAULT_CONCURRENCY));
    assert_eq!(f["instances"].as_array().map(Vec::len), Some(2));
    gw.stop().await;
}

async fn requests_take_turns(concurrency: usize, reserved: Option<u32>) {
    let hold = Hold::start().await;
    let gw = start(&hold, concurrency, reserved).await;
    let chan = gw.gateway.functions[0].chan.clone();
    assert_eq!(chan.concurrency, 1);

    let (a, b) = (send(gw.addr(), 1), send(gw.addr(), 2));
    hold.wait_until("the first request in the function", |s| {
        !s.arrived.is_empty()
    })
    .await;
    // Both invocations have reached devgw: the second is queued behind the first.
    let until = Instant::now() + PATIENCE;
    while chan.outstanding() < 2 {
        assert!(Instant::now() < until, "the second request reaches devgw");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second instance, if one were wrongly started, would get some time to take it; what
    // decides is below: one instance, one process, never two in the function at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hold.waiting(), 1, "the second waits for the first");
    hold.release();
    hold.wait_until("the second request in the function", |s| {
        s.arrived.len() == 2
    })
    .await;
    hold.release();
    let (pa, pb) = (pid_of(a).await, pid_of(b).await);

    assert_eq!(pa, pb, "one process handled both");
    assert_eq!(hold.most_at_once(), 1);
    assert_eq!(instances(&gw), 1);
    gw.stop().await;
}

async fn two_sqs_batches_run_at_once() {
    let Some(sqs) = local_sqs().await else {
        println!("skipped: AWS_ENDPOINT_URL is not set (run with make test)");
        return;
    };
    let prefix = format!("devgw-concurrency-{}", std::process::id());
    let url = queue_with_messages(&sqs, &format!("{prefix}-HoldQueue"), 2).await;
    let hold = Hold::start().await;
    let more = (
        "  HoldQueue:\n    Type: AWS::SQS::Queue\n",
        "        Queue:\n          Type: SQS\n          Properties:\n            Queue: !GetAtt HoldQueue.Arn\n            BatchSize: 1\n",
    );
    let gw = start_with(
        template(&hold, None, more),
        usize::from(gateway::DEFAULT_CONCURRENCY),
        Some(&prefix),
    )
    .await;

    hold.wait_until("both batches in the function at once", |s| {
        s.waiting.len() == 2
    })
    .await;
    hold.release();
    let arrived = hold.arrived();
    assert_ne!(arrived[0], arrived[1], "two processes handled them");

    // Both batches succeeded: their records are deleted.
    let until = Instant::now() + PATIENCE;
    loop {
        let left = records_left(&sqs, &url).await;
        if left == 0 {
            break;
        }
        assert!(Instant::now() < until, "{left} record(s) left on the queue");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(hold.arrived().len(), 2, "each record was handled once");
    gw.stop().await;
    let _ = sqs.delete_queue().queue_url(&url).send().await;
}
