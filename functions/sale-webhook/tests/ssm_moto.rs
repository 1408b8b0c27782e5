//! Secrets from SSM Parameter Store, against moto (`infra/moto.sh run -- cargo test`).

use sale_webhook::config::{
    load_secrets, load_tracking_keys, ConfigError, SecretSource, TrackingKeySource,
};
use testkit::moto::{local_config, put_secure_string, unique_name};

#[tokio::test]
async fn signing_secrets_are_read_from_a_secure_string() {
    let aws = local_config().await;
    let name = format!("/{}/stripe-signing-secret", unique_name("sw"));
    put_secure_string(&aws, &name, "whsec_new, whsec_old").await;
    let secrets = load_secrets(&SecretSource::Ssm(name), &aws)
        .await
        .expect("secrets");
    assert_eq!(secrets.len(), 2);
}

#[tokio::test]
async fn a_missing_parameter_fails_init() {
    let aws = local_config().await;
    let name = format!("/{}/absent", unique_name("sw"));
    let r = load_secrets(&SecretSource::Ssm(name.clone()), &aws).await;
    assert!(matches!(r, Err(ConfigError::Ssm { name: n, .. }) if n == name));
}

#[tokio::test]
async fn tracking_keys_are_read_from_a_secure_string() {
    let aws = local_config().await;
    let name = format!("/{}/tracking-key", unique_name("sw"));
    put_secure_string(
        &aws,
        &name,
        "current-key-0123456789abcdef0123456789,previous-key-0123456789abcdef012345",
    )
    .await;
    assert!(load_tracking_keys(&TrackingKeySource::Ssm(name), &aws)
        .await
        .is_ok());
    let short = format!("/{}/tracking-key-short", unique_name("sw"));
    put_secure_string(&aws, &short, "too-short").await;
    assert!(matches!(
        load_tracking_keys(&TrackingKeySource::Ssm(short), &aws).await,
        Err(ConfigError::BadTrackingKey { .. })
    ));
}
