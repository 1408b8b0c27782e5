//! The local moto server: SDK configuration, fresh tables and queues, SSM parameters.
//!
//! Tables and queues come from storage's `testing` feature (the table is created from
//! `template.yaml`, so it cannot drift from the deployed one); each test gets its own, uniquely
//! named, so tests run in parallel on one server.

pub use storage::testing::{fresh_queue, fresh_table, local_config, unique_name};

/// Put a SecureString parameter (overwriting), as `make dev` does for the functions' secrets.
pub async fn put_secure_string(config: &aws_config::SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_parameter {name}: {e:?}"));
}

/// An e-mail the local SES accepted, as moto keeps it (`GET /moto-api/data.json`, `ses` →
/// `Message`). moto keeps one body: the HTML one when the mail has both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub id: String,
    pub source: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Every e-mail the local SES accepted to `recipient` (of every test: filter on an address of
/// your own), in the order sent. Plain HTTP/1.0 on the loopback endpoint, no client crate.
pub fn sent_emails_to(recipient: &str) -> Vec<SentEmail> {
    use std::io::{Read, Write};
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&authority).expect("moto");
    write!(
        s,
        "GET /moto-api/data.json HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = vec![];
    s.read_to_end(&mut raw).expect("response");
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let data: serde_json::Value = serde_json::from_str(body).expect("moto data.json");
    let mut out = vec![];
    for m in data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let to: Vec<String> = m["destinations"]["ToAddresses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if !to.iter().any(|t| t.eq_ignore_ascii_case(recipient)) {
            continue;
        }
        out.push(SentEmail {
            id: m["id"].as_str().unwrap_or("").into(),
            source: m["source"].as_str().unwrap_or("").into(),
            to,
            subject: m["subject"].as_str().unwrap_or("").into(),
            body: m["body"].as_str().unwrap_or("").into(),
        });
    }
    out
}
