//! Secrets from SSM Parameter Store, against moto (`infra/moto.sh run -- cargo test`).

use sale_webhook::config::{
    load_feed_sources, load_secrets, load_tracking_keys, ConfigError, SecretSource,
    TrackingKeySource, FEED_SECRETS_ENV, FEED_SECRETS_PATH_ENV,
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

#[tokio::test]
async fn each_parameter_under_the_feed_path_is_a_source() {
    let aws = local_config().await;
    let root = format!("/{}/sale-feed", unique_name("sw"));
    put_secure_string(&aws, &format!("{root}/billing"), "whsec_b1, whsec_b0").await;
    put_secure_string(&aws, &format!("{root}/shop"), "whsec_s").await;
    // Deeper parameters are not sources.
    put_secure_string(&aws, &format!("{root}/archive/old"), "whsec_x").await;
    let path = format!("{root}/");
    let lookup = |k: &str| {
        (k == FEED_SECRETS_PATH_ENV)
            .then(|| path.clone())
            .or_else(|| (k == FEED_SECRETS_ENV).then(|| "ignored=whsec_i".to_string()))
    };
    let sources = load_feed_sources(lookup, &aws).await.expect("sources");
    assert_eq!(sources.names().collect::<Vec<_>>(), vec!["billing", "shop"]);
    assert_eq!(sources.secrets("billing").map(|s| s.len()), Some(2));

    put_secure_string(&aws, &format!("{root}/Bad.Name"), "whsec_x").await;
    assert!(matches!(
        load_feed_sources(lookup, &aws).await,
        Err(ConfigError::BadFeedSources { .. })
    ));
    let empty = format!("/{}/none/", unique_name("sw"));
    let sources = load_feed_sources(
        |k: &str| (k == FEED_SECRETS_PATH_ENV).then(|| empty.clone()),
        &aws,
    )
    .await
    .expect("no source");
    assert!(sources.is_empty());
}
