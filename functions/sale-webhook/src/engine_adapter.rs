//! [`SaleSink`] over the real engine (`shared/engine`): type mapping only.

use engine::{attribution, sales, Engine, EngineError};

use crate::sink::{
    BindOutcome, BindRequest, BindSource, PaidInvoice, PaymentFailed, SaleOutcome, SaleSink,
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

fn sink_error(e: EngineError) -> SinkError {
    if e.is_retryable() {
        SinkError::Retryable(e.to_string())
    } else {
        SinkError::Permanent(e.to_string())
    }
}

/// The engine's binding request for ours. Stripe bindings never name a program: the click or
/// promotion code decides it.
pub fn to_engine_bind(req: BindRequest) -> attribution::BindRequest {
    attribution::BindRequest {
        program_id: None,
        customer_key: req.customer_key,
        email: req.email,
        source: match req.source {
            BindSource::ClickId(c) => attribution::BindSource::ClickId(c),
            BindSource::Coupon(c) => attribution::BindSource::Coupon(c),
        },
        at_ms: req.at_ms,
        source_event: format!("stripe:{}", req.source_event),
    }
}

pub fn from_engine_bind(o: attribution::BindOutcome) -> BindOutcome {
    match o {
        attribution::BindOutcome::Bound {
            program_id,
            partner_id,
        } => BindOutcome::Bound {
            program_id,
            partner_id,
        },
        attribution::BindOutcome::AlreadyBound {
            program_id,
            partner_id,
        } => BindOutcome::AlreadyBound {
            program_id,
            partner_id,
        },
        attribution::BindOutcome::Rejected(r) => BindOutcome::Rejected {
            reason: format!("{}: {r}", r.code()),
        },
    }
}

pub fn to_engine_invoice(inv: PaidInvoice) -> sales::PaidInvoice {
    sales::PaidInvoice {
        event_id: inv.event_id,
        invoice_id: inv.invoice_id,
        customer_key: inv.customer_key,
        customer_email: inv.customer_email,
        currency: inv.currency,
        lines: inv
            .lines
            .into_iter()
            .map(|l| sales::InvoiceLine {
                product_id: l.product_id,
                amount_minor: l.amount_minor,
                metered: l.metered,
                excluded: l.excluded,
            })
            .collect(),
        paid_at_ms: inv.paid_at_ms,
        subscription_id: inv.subscription_id,
        promotion_codes: inv.promotion_codes,
    }
}

pub fn from_engine_sale(o: sales::SaleOutcome) -> SaleOutcome {
    match o {
        sales::SaleOutcome::Booked {
            program_ids,
            commission_ids,
        } => SaleOutcome::Booked {
            detail: format!(
                "programs [{}], commissions [{}]",
                program_ids.join(", "),
                commission_ids.join(", ")
            ),
        },
        sales::SaleOutcome::Unattributed { .. } => SaleOutcome::Unattributed,
        sales::SaleOutcome::AlreadyProcessed => SaleOutcome::AlreadyProcessed,
        sales::SaleOutcome::NotOnAnyProgram => SaleOutcome::NotOnAnyProgram,
        sales::SaleOutcome::NotCommissionable { reason } => {
            SaleOutcome::NotCommissionable { reason }
        }
    }
}

#[async_trait::async_trait]
impl SaleSink for EngineSink {
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, SinkError> {
        attribution::bind(&self.engine, to_engine_bind(req))
            .await
            .map(from_engine_bind)
            .map_err(sink_error)
    }

    async fn invoice_paid(&self, inv: PaidInvoice) -> Result<SaleOutcome, SinkError> {
        sales::invoice_paid(&self.engine, to_engine_invoice(inv))
            .await
            .map(from_engine_sale)
            .map_err(sink_error)
    }

    async fn invoice_payment_failed(&self, f: PaymentFailed) -> Result<(), SinkError> {
        sales::invoice_payment_failed(
            &self.engine,
            &f.event_id,
            &f.invoice_id,
            &f.customer_key,
            f.at_ms,
        )
        .await
        .map_err(sink_error)
    }

    async fn subscription_ended(&self, e: SubscriptionEnded) -> Result<(), SinkError> {
        sales::subscription_ended(
            &self.engine,
            &e.event_id,
            &e.subscription_id,
            &e.customer_key,
            e.at_ms,
        )
        .await
        .map_err(sink_error)
    }
}
