//! Which automatic rails this deployment has, from the environment (template.yaml parameters):
//!
//! | variable | meaning |
//! |---|---|
//! | `PAYPAL_API_BASE` | PayPal's REST base URL (`https://api-m.sandbox.paypal.com`, `https://api-m.paypal.com`, or the local fake) |
//! | `PAYPAL_CREDENTIALS_PARAM` | SSM SecureString holding `{"client_id": …, "secret": …}` |
//! | `PAYPAL_CLIENT_ID`, `PAYPAL_CLIENT_SECRET` | the same, directly (local use only) |
//! | `STRIPE_CONNECT_API_BASE` | Stripe's API base URL (default `https://api.stripe.com`) |
//! | `STRIPE_CONNECT_KEY_PARAM` | SSM SecureString holding a key that may create and list transfers |
//! | `STRIPE_CONNECT_KEY` | the same, directly (local use only) |
//!
//! A rail without credentials is not configured: its partners' items wait approved for the
//! manual export (`partnerctl payouts export`).

use rails::paypal::Credentials;
use rails::RailsConfig;
use serde::Deserialize;

use crate::PayoutFnError;

pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";

#[derive(Deserialize)]
struct PayPalSecret {
    client_id: String,
    secret: String,
}

async fn read_parameter(aws: &aws_config::SdkConfig, name: &str) -> Result<String, PayoutFnError> {
    let out = aws_sdk_ssm::Client::new(aws)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| PayoutFnError::Ssm {
            name: name.to_string(),
            reason: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| PayoutFnError::Ssm {
            name: name.to_string(),
            reason: "empty".into(),
        })
}

/// The rails' configuration; `get` reads a non-empty environment variable.
pub async fn load(
    get: &dyn Fn(&'static str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<RailsConfig, PayoutFnError> {
    let mut config = RailsConfig::default();
    let paypal = match (
        get("PAYPAL_CREDENTIALS_PARAM"),
        get("PAYPAL_CLIENT_ID"),
        get("PAYPAL_CLIENT_SECRET"),
    ) {
        (Some(param), _, _) => {
            let raw = read_parameter(aws, &param).await?;
            let s: PayPalSecret = serde_json::from_str(&raw).map_err(|e| PayoutFnError::Ssm {
                name: param.clone(),
                reason: format!("not {{\"client_id\", \"secret\"}}: {e}"),
            })?;
            Some(Credentials {
                client_id: s.client_id,
                secret: s.secret,
            })
        }
        (None, Some(client_id), Some(secret)) => Some(Credentials { client_id, secret }),
        _ => None,
    };
    if let Some(creds) = paypal {
        let base = get("PAYPAL_API_BASE").ok_or(PayoutFnError::Missing("PAYPAL_API_BASE"))?;
        config.paypal = Some((base, creds));
    }
    let stripe_key = match (get("STRIPE_CONNECT_KEY_PARAM"), get("STRIPE_CONNECT_KEY")) {
        (Some(param), _) => Some(read_parameter(aws, &param).await?),
        (None, Some(key)) => Some(key),
        _ => None,
    };
    if let Some(key) = stripe_key {
        let base =
            get("STRIPE_CONNECT_API_BASE").unwrap_or_else(|| DEFAULT_STRIPE_API_BASE.to_string());
        config.stripe = Some((base, key.trim().to_string()));
    }
    Ok(config)
}
