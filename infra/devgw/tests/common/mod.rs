//! Test helpers: a raw HTTP/1.1 client and the `bench-hello` echo function binary.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request on a fresh connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write body");
    let mut raw = vec![];
    s.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = raw[split + 4..].to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// `target/debug` (or whatever profile directory this test binary lives under).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> -> target/debug
    exe.parent()
        .and_then(|p| p.parent())
        .expect("profile directory")
        .to_path_buf()
}

/// The `bench-hello` echo function, built if needed.
pub fn hello_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let path = bin_dir().join("bench-hello");
            // `cargo test --workspace --all-targets` has built it already; build it only when
            // missing or older than its source (a lone build resolves other features, so it
            // would relink it needlessly).
            let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-hello");
            let newest_src = ["src/main.rs", "Cargo.toml"]
                .iter()
                .filter_map(|f| {
                    std::fs::metadata(src.join(f))
                        .and_then(|m| m.modified())
                        .ok()
                })
                .max();
            let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if let (Some(b), Some(s)) = (built, newest_src) {
                if b >= s {
                    return path;
                }
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "bench-hello", "--bin", "bench-hello"])
                .status()
                .expect("run cargo build -p bench-hello");
            assert!(status.success(), "cargo build -p bench-hello failed");
            assert!(path.exists(), "{} was not built", path.display());
            path
        })
        .clone()
}

/// A fresh directory for a test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!("devgw-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// An SQS client of the local moto server (`make test` sets `AWS_ENDPOINT_URL`), or `None`
/// without one.
pub async fn local_sqs() -> Option<aws_sdk_sqs::Client> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok()?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    Some(aws_sdk_sqs::Client::new(&config))
}

/// Create the queue `name` with `messages` messages `{"n":0}`, `{"n":1}`, ...; its URL.
pub async fn queue_with_messages(sqs: &aws_sdk_sqs::Client, name: &str, messages: u32) -> String {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    for n in 0..messages {
        sqs.send_message()
            .queue_url(&url)
            .message_body(format!("{{\"n\":{n}}}"))
            .send()
            .await
            .expect("send");
    }
    url
}

/// Records on the queue, visible or not (received and not yet deleted).
pub async fn records_left(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}
