//! One `make dev` stack per test: `infra/dev.sh --inside-moto` on a free port, with a table and
//! a settings directory of its own, inside the moto server of `make test`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::http::{self, Reply};

/// How long a stack may take to come up: setup, seed, and every function's init.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long dev.sh gets to stop devgw and the functions after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts when the free port found was taken before devgw bound it.
const PORT_ATTEMPTS: usize = 3;

static STACKS: AtomicU32 = AtomicU32::new(0);

/// A running `make dev` stack; dropping it stops it (dev.sh stops devgw and the functions).
pub struct Stack {
    root: PathBuf,
    dev_sh: Child,
    port: u16,
    table: String,
    /// dev.sh's `DEV_DIR`, relative to the root: this stack's `env` and `queues.env` (and here
    /// its output, `stack.log`), so that stacks and a running `make dev` keep apart.
    dev_dir: String,
    /// What `source $DEV_DIR/env` gives a second shell of this stack.
    shell_env: BTreeMap<String, String>,
    log: PathBuf,
}

enum Startup {
    PortTaken,
    Failed(String),
}

impl Stack {
    /// Start a stack and wait until every function is ready.
    pub async fn start() -> Stack {
        Self::start_with(&[]).await
    }

    /// [`Stack::start`] with extra environment for `infra/dev.sh` (as `make dev NAME=value`):
    /// devgw's environment overrides the template's values and reaches every function, e.g.
    /// `EMAIL_QUEUE_URL` routes the e-mail kinds of the outbox to a queue.
    pub async fn start_with(env: &[(&str, &str)]) -> Stack {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            panic!("AWS_ENDPOINT_URL is not set: run the system tests with `make test`, which starts moto");
        }
        let root = repo_root();
        check_target_dir(&root);
        for _ in 0..PORT_ATTEMPTS {
            let n = STACKS.fetch_add(1, Ordering::SeqCst);
            let table = format!("system-{}-{n}", std::process::id());
            let dev_dir = format!(".dev/system-tests/{table}");
            std::fs::create_dir_all(root.join(&dev_dir)).expect("DEV_DIR");
            let log = root.join(&dev_dir).join("stack.log");
            let port = free_port();
            let dev_sh = spawn_dev_sh(&root, port, &table, &dev_dir, &log, env);
            let mut stack = Stack {
                root: root.clone(),
                dev_sh,
                port,
                table,
                dev_dir,
                shell_env: BTreeMap::new(),
                log,
            };
            match stack.wait_ready().await {
                Ok(()) => {
                    stack.shell_env = stack.read_shell_env();
                    stack.check_binaries().await;
                    return stack;
                }
                Err(Startup::PortTaken) => continue,
                Err(Startup::Failed(why)) => panic!("{why}"),
            }
        }
        panic!("devgw found no free port in {PORT_ATTEMPTS} attempts")
    }

    /// `http://127.0.0.1:<port>`, the gateway.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A setting of the stack's second shell (`$DEV_DIR/env`), e.g. `STRIPE_SIGNING_SECRET`.
    pub fn setting(&self, name: &str) -> &str {
        self.shell_env.get(name).unwrap_or_else(|| {
            panic!(
                "{name} is not in {}/env: {:?}",
                self.dev_dir, self.shell_env
            )
        })
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let url = format!("{}{path}", self.base_url());
        http::send(method, &url, headers, body.into())
            .await
            .unwrap_or_else(|e| panic!("{e}{}", self.log_tail()))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], vec![]).await
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        self.request("POST", path, headers, body).await
    }

    /// The merchant binds customer `cus_{tag}_{i}` to bob by his code, then Stripe reports the
    /// customer's paid invoice (`invoice.paid` of `events/stripe/`, the next whole second): bob
    /// earns 24.75, alice (his recruiter) 4.95. Returns the invoice's business time, seconds.
    pub async fn bob_sale(&self, tag: &str, i: usize) -> i64 {
        let lead = self
            .track_lead(
                serde_json::json!({"code": "bob", "customer_key": format!("cus_{tag}_{i}")}),
            )
            .await;
        assert_eq!(lead.status, 201, "{}", lead.text());
        let created = crate::stripe::next_second().await;
        let paid = self
            .deliver_stripe(&crate::stripe::invoice_paid_for(tag, i, created), created)
            .await;
        assert_eq!(paid.status, 200, "{}", paid.text());
        created
    }

    /// `POST /v1/track/lead` of the demo program (its tracking key, infra/dev/demo.yaml), as the
    /// merchant's backend reports a sign-up: `lead` is the JSON body.
    pub async fn track_lead(&self, lead: serde_json::Value) -> Reply {
        let auth = format!("Bearer {}", crate::DEMO_TRACKING_KEY);
        self.post(
            "/v1/track/lead",
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ],
            lead.to_string(),
        )
        .await
    }

    /// Stripe delivers `body` to `POST /webhooks/stripe`, signed at `t` (seconds) with the
    /// stack's local secret.
    pub async fn deliver_stripe(&self, body: &[u8], t: i64) -> Reply {
        let signature = crate::stripe::signature(self.setting("STRIPE_SIGNING_SECRET"), t, body);
        self.post(
            "/webhooks/stripe",
            &[
                ("content-type", "application/json"),
                ("stripe-signature", signature.as_str()),
            ],
            body.to_vec(),
        )
        .await
    }

    /// The merchant's billing system sends `body` to `POST /webhooks/sale` as source `billing`
    /// (make dev's), signed now with the stack's `SALE_FEED_SECRET`.
    pub async fn deliver_sale(&self, body: &[u8]) -> Reply {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let signature = crate::stripe::signature(self.setting("SALE_FEED_SECRET"), t, body);
        self.post(
            "/webhooks/sale",
            &[
                ("content-type", "application/json"),
                ("sale-source", "billing"),
                ("sale-signature", signature.as_str()),
            ],
            body.to_vec(),
        )
        .await
    }

    /// The Lambda Invoke API (`aws lambda invoke --endpoint-url`): the function's raw answer.
    pub async fn invoke(&self, function: &str, event: &impl serde::Serialize) -> Reply {
        let payload = serde_json::to_vec(event).expect("event JSON");
        self.post(
            &format!("/2015-03-31/functions/{function}/invocations"),
            &[("content-type", "application/json")],
            payload,
        )
        .await
    }

    /// A command run as in the README's second shell: from the repository root, with
    /// `$DEV_DIR/env` sourced. `program` is relative to the root (`infra/dev/stripe-event.sh`).
    pub fn shell(&self, program: &str) -> Command {
        let mut c = Command::new(self.root.join(program));
        c.current_dir(&self.root)
            .envs(&self.shell_env)
            .stdin(Stdio::null());
        c
    }

    /// `target/debug/partnerctl ARGS` in the second shell; its standard output. Panics when
    /// it fails.
    pub fn partnerctl(&self, args: &[&str]) -> String {
        let out = self
            .shell("target/debug/partnerctl")
            .args(args)
            .output()
            .expect("run partnerctl");
        assert!(
            out.status.success(),
            "partnerctl {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// `partnerctl --format json ARGS`, parsed.
    pub fn partnerctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let text = self.partnerctl(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("partnerctl {all:?}: {e}: {text}"))
    }

    async fn wait_ready(&mut self) -> Result<(), Startup> {
        let until = Instant::now() + START_TIMEOUT;
        let ready_url = format!("{}/dev/ready", self.base_url());
        let mut last = String::from("no answer yet");
        while Instant::now() < until {
            if let Ok(Some(status)) = self.dev_sh.try_wait() {
                let log = self.log_text();
                if log.contains("devgw exited (is port") && log.contains("Address already in use") {
                    return Err(Startup::PortTaken);
                }
                return Err(Startup::Failed(format!(
                    "infra/dev.sh --inside-moto exited ({status}) before the stack was ready{}",
                    self.log_tail()
                )));
            }
            if let Ok(reply) = http::send("GET", &ready_url, &[], vec![]).await {
                let states = function_states(&reply.json());
                if let Some((name, state)) = states.iter().find(|(_, s)| s.starts_with("missing")) {
                    return Err(Startup::Failed(format!(
                        "function {name}: {state}: build the binaries first (`make test` does){}",
                        self.log_tail()
                    )));
                }
                if reply.status == 200
                    && !states.is_empty()
                    && states.iter().all(|(_, s)| s == "ready")
                {
                    return Ok(());
                }
                last = format!("{states:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Startup::Failed(format!(
            "the stack was not ready after {START_TIMEOUT:?} ({last}){}",
            self.log_tail()
        )))
    }

    /// `$DEV_DIR/env` as a second shell sources it, checked to be this stack's, plus `DEV_DIR`
    /// itself (where dev.sh's helpers look for it).
    fn read_shell_env(&self) -> BTreeMap<String, String> {
        let file = self.root.join(&self.dev_dir).join("env");
        let out = Command::new("bash")
            .args(["-c", ". \"$1\" && env -0", "bash"])
            .arg(&file)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "source {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| !matches!(*k, "PATH" | "PWD" | "OLDPWD" | "SHLVL" | "_"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let port = self.port.to_string();
        assert!(
            env.get("PORT") == Some(&port) && env.get("TABLE_NAME") == Some(&self.table),
            "{} is not this stack's (PORT {port}, TABLE_NAME {}): {env:?}",
            file.display(),
            self.table
        );
        env.insert("DEV_DIR".into(), self.dev_dir.clone());
        env
    }

    /// Every binary the stack runs must be newer than its sources.
    async fn check_binaries(&self) {
        let listing = self.get("/dev/functions").await.json();
        let mut binaries: Vec<PathBuf> = ["partnerctl", "devgw"]
            .iter()
            .map(|b| self.root.join("target/debug").join(b))
            .collect();
        for f in listing["functions"].as_array().into_iter().flatten() {
            if let Some(b) = f["binary"].as_str() {
                binaries.push(self.root.join(b.trim_start_matches("./")));
            }
        }
        for b in &binaries {
            if let Some(newer) = newer_source(b) {
                panic!(
                    "{} is older than {}, and so not of this test's build: build the binaries \
                     first (`make test` does, or `cargo build --bins`)",
                    b.display(),
                    newer.display()
                );
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The end of the stack's output (dev.sh, devgw and the functions), for a failure message.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(80)..].join("\n");
        format!(
            "\n--- last lines of {} (infra/dev.sh, devgw, functions):\n{tail}",
            self.log.display()
        )
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SIGTERM to dev.sh: its trap stops devgw, which stops the functions. A child already
        // reaped gets no signal (its pid may belong to another process by now).
        if let Ok(None) = self.dev_sh.try_wait() {
            let _ = Command::new("bash")
                .args(["-c", "kill -TERM \"$1\"", "bash"])
                .arg(self.dev_sh.id().to_string())
                .status();
            let until = Instant::now() + STOP_TIMEOUT;
            while matches!(self.dev_sh.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(None) = self.dev_sh.try_wait() {
                let _ = self.dev_sh.kill();
                let _ = self.dev_sh.wait();
            }
        }
        // Kept after a failure, for a look at the whole log.
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        } else {
            let _ = std::fs::remove_dir_all(self.root.join(&self.dev_dir));
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// dev.sh and devgw run the binaries of `<root>/target/debug`: this test must come from that
/// build, or it would test other binaries than its own build's.
fn check_target_dir(root: &Path) {
    let exe = std::env::current_exe().expect("test binary path");
    // <target>/debug/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(|p| p.canonicalize().ok());
    let expected = root.join("target/debug").canonicalize().ok();
    assert!(
        profile_dir.is_some() && profile_dir == expected,
        "make dev runs the binaries of {}/target/debug, but this test was built in {profile_dir:?}: \
         run without CARGO_TARGET_DIR or --release",
        root.display()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn spawn_dev_sh(
    root: &Path,
    port: u16,
    table: &str,
    dev_dir: &str,
    log: &Path,
    extra_env: &[(&str, &str)],
) -> Child {
    let out = File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err = out.try_clone().expect("log file");
    Command::new(root.join("infra/dev.sh"))
        .arg("--inside-moto")
        .current_dir(root)
        // make dev's own settings (infra/dev.sh): a port, a table and a settings directory of
        // this stack's own, the demo seed, and schedules fired by the test rather than by the
        // wall clock.
        .env("PORT", port.to_string())
        .env("TABLE_NAME", table)
        .env("DEV_DIR", dev_dir)
        .env("SEED", "infra/dev/demo.yaml")
        .env("DEVGW_SCHEDULES", "manual")
        // The longest click-write wait the redirect allows: on a loaded CI machine moto can take
        // more than production's 250 ms, and the tests read their clicks back.
        .env("CLICK_WRITE_TIMEOUT_MS", "5000")
        // The manual payout rail (items wait approved for `partnerctl payouts export`) unless a
        // test asks for the fake PayPal and Stripe (`FAKE_RAILS=on`, make dev's default).
        .env("FAKE_RAILS", "off")
        // The test's own settings (Stack::start_with), last: they win.
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run infra/dev.sh --inside-moto")
}

/// `(name, state)` of each function in a `/dev/ready` answer.
fn function_states(ready: &serde_json::Value) -> Vec<(String, String)> {
    ready["functions"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, s)| {
                    let state = s["state"].as_str().unwrap_or("?");
                    let detail = s["detail"]
                        .as_str()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    (name.clone(), format!("{state}{detail}"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A source of `binary` (from cargo's dep-info file `<binary>.d`) changed after the binary was
/// built but before this test was: the binary is not of this test's build. (A source changed
/// while the tests run is not counted: this test binary predates it as well.)
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let built = modified(binary)?;
    let this_test = std::env::current_exe().ok().and_then(|e| modified(&e))?;
    let dep_info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    // `<binary>: <source> <source> ...`, spaces in paths escaped as `\ `.
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    let escaped = sources.replace("\\ ", "\u{0}");
    escaped
        .split_whitespace()
        .map(|s| PathBuf::from(s.replace('\u{0}', " ")))
        .find(|s| modified(s).is_some_and(|m: SystemTime| m > built && m <= this_test))
}
