//! Headless Chromium for the browser tests: Debian's `chromium` driven by its `chromedriver`
//! over the W3C WebDriver protocol (plain HTTP and JSON, <https://www.w3.org/TR/webdriver2/>),
//! so no browser download and no extra dependency. `make test` installs both when missing
//! (`infra/browser.sh install`); `CHROMIUM` and `CHROMEDRIVER` override their paths.
//!
//! Also a tiny "merchant site" ([`Site`]): static pages on a loopback port, for the pages the
//! merchant's own domain would serve.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One Chromium session behind its own chromedriver process.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// Start chromedriver and a headless Chromium session with an empty profile.
    pub async fn start() -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            std::path::Path::new(&chromedriver).exists() && std::path::Path::new(&chromium).exists(),
            "{chromium} and {chromedriver} are needed: infra/browser.sh install (make test runs it)"
        );
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{chromedriver}: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http::send("GET", &format!("{base}/status"), &[], vec![]).await {
                if r.status == 200 && r.json()["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("pe-chromium-{port}-{}", std::process::id()));
        // The flags the machine's notes give for headless Chromium on a closed network.
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            profile,
        };
        let v = b.call("POST", "/session", Some(caps)).await;
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let r = http::send(method, &url, &[("content-type", "application/json")], body)
            .await
            .unwrap_or_else(|e| panic!("chromedriver: {e}"));
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigate and wait for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        )
        .await;
    }

    /// Run `script` (a function body: `return …;`) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The cookies visible to the current page, with their `expiry` (seconds).
    pub async fn cookies(&self) -> Vec<Value> {
        self.call("GET", &self.session_path("/cookie"), None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Forget the cookies of the current page's domain (a new visitor).
    pub async fn delete_cookies(&self) {
        self.call("DELETE", &self.session_path("/cookie"), None)
            .await;
    }

    /// End the session and the driver.
    pub async fn quit(mut self) {
        let path = self.session_path("");
        let _ = http::send("DELETE", &format!("{}{path}", self.base), &[], vec![]).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Static pages on `http://localhost:{port}` (a host of its own for the browser's cookies, apart
/// from the stack on 127.0.0.1): every path answers the page `pages` gives it.
pub struct Site {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Serve `page(path)` as `text/html`, or 404 when it gives `None`.
    pub async fn start(page: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let page = Arc::new(page);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let page = page.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut read = 0;
                    while read < buf.len() {
                        match sock.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read += n,
                        }
                        if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..read]);
                    let target = head.split_whitespace().nth(1).unwrap_or("/");
                    let path = target.split('?').next().unwrap_or("/");
                    let (status, body) = match page(path) {
                        Some(b) => ("200 OK", b),
                        None => ("404 Not Found", "not found".to_string()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Site {
            base: format!("http://localhost:{port}"),
            task,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}
