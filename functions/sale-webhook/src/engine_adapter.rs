//! [`SaleSink`] over the real engine (`shared/engine`): the calls, and the error classes.

use engine::payout::connect;
use engine::{attribution, sales, Engine, EngineError};

use storage::attention::{self, NewAttention};
use storage::StoreError;

use crate::sink::{
    AccountOutcome, AccountUpdate, BindOutcome, BindRequest, MoneyBack, MoneyBackOutcome,
    PaidInvoice, PaymentFailed, ReversalOutcome, ReversedTransfer, SaleOutcome, SaleSink,
    SinkError, SubscriptionEnded,
};

/// The engine as this function's sink.
#[derive(Debug, Clone)]
pub struct EngineSink {
    pub engine: Engine,
}

impl EngineSink {
    pub fn new(engine: Engine) -> Self {
        EngineSink { engine }
    }
}

fn store_error(e: StoreError) -> SinkError {
    sink_error(EngineError::Store(e))
}

fn sink_error(e: EngineError) -> SinkError {
    if e.is_retryable() {
        SinkError::Retryable(e.to_string())
    } else {
        SinkError::Permanent(e.to_string())
    }
}

#[async_trait::async_trait]
impl SaleSink for EngineSink {
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, SinkError> {
        attribution::bind(&self.engine, req)
            .await
            .map_err(sink_error)
    }

    async fn invoice_paid(&self, inv: PaidInvoice) -> Result<SaleOutcome, SinkError> {
        sales::invoice_paid(&self.engine, inv)
            .await
            .map_err(sink_error)
    }

    async fn invoice_payment_failed(&self, f: PaymentFailed) -> Result<(), SinkError> {
        sales::invoice_payment_failed(&self.engine, f)
            .await
            .map_err(sink_error)
    }

    async fn subscription_ended(&self, e: SubscriptionEnded) -> Result<(), SinkError> {
        sales::subscription_ended(&self.engine, e)
            .await
            .map_err(sink_error)
    }

    async fn money_back(&self, m: MoneyBack) -> Result<MoneyBackOutcome, SinkError> {
        sales::money_back(&self.engine, m).await.map_err(sink_error)
    }

    async fn needs_attention(&self, rec: &NewAttention<'_>) -> Result<String, SinkError> {
        attention::record(&self.engine.table, rec)
            .await
            .map(|(id, _)| id)
            .map_err(store_error)
    }

    async fn account_updated(&self, u: AccountUpdate) -> Result<AccountOutcome, SinkError> {
        connect::account_updated(&self.engine, &u)
            .await
            .map_err(sink_error)
    }

    async fn transfer_reversed(
        &self,
        t: ReversedTransfer,
        at_ms: i64,
    ) -> Result<ReversalOutcome, SinkError> {
        connect::transfer_reversed(&self.engine, &t, at_ms)
            .await
            .map_err(sink_error)
    }

    async fn api_version_accepted(&self, attention_id: &str) -> Result<bool, SinkError> {
        Ok(attention::get(&self.engine.table, attention_id)
            .await
            .map_err(store_error)?
            .is_some_and(|r| r.accept_api_version))
    }
}
