//! `fakerails`: the local fakes of PayPal Payouts and Stripe Connect, as `make dev` runs them.
//!
//! Prints one line per fake (`paypal http://127.0.0.1:PORT`, `stripe http://127.0.0.1:PORT`)
//! and writes them to `--urls-file` when given, then serves until killed.

use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Local fakes of PayPal Payouts and Stripe Connect transfers")]
struct Args {
    /// PayPal's port (0: a free one).
    #[arg(long, default_value_t = 0)]
    paypal_port: u16,
    /// Stripe's port (0: a free one).
    #[arg(long, default_value_t = 0)]
    stripe_port: u16,
    #[arg(long, env = "PAYPAL_CLIENT_ID", default_value = "fake-client")]
    paypal_client_id: String,
    #[arg(long, env = "PAYPAL_CLIENT_SECRET", default_value = "fake-secret")]
    paypal_client_secret: String,
    #[arg(long, env = "STRIPE_CONNECT_KEY", default_value = "sk_test_fake")]
    stripe_key: String,
    /// Write `KEY=URL` lines here (PAYPAL_API_BASE, STRIPE_CONNECT_API_BASE).
    #[arg(long)]
    urls_file: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let paypal = fakerails::paypal::FakePayPal::start(
        SocketAddr::from(([127, 0, 0, 1], a.paypal_port)),
        &a.paypal_client_id,
        &a.paypal_client_secret,
    )
    .await?;
    let stripe = fakerails::stripe::FakeStripeConnect::start(
        SocketAddr::from(([127, 0, 0, 1], a.stripe_port)),
        &a.stripe_key,
    )
    .await?;
    println!("paypal {}", paypal.base_url);
    println!("stripe {}", stripe.base_url);
    if let Some(f) = a.urls_file {
        std::fs::write(
            f,
            format!(
                "PAYPAL_API_BASE={}\nSTRIPE_CONNECT_API_BASE={}\n",
                paypal.base_url, stripe.base_url
            ),
        )?;
    }
    std::future::pending::<()>().await;
    Ok(())
}
