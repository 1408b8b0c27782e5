//! `GET /r/{code}` and `GET /r/{code}/{sub_id}`: count the click, redirect with a click id.
//!
//! 1. Unknown code, disabled link or paused program: fallback (nothing recorded).
//! 2. Destination: the link's (or program's) default, or an allowed `?to=` deep link.
//! 3. HEAD, prefetch/prerender, preview bots: `302` to the destination, no click id, no cookies.
//! 4. The browser already holds a click id for this link from the last hour (`ref_click`
//!    cookie, verified): a repeat, answered with that id and nothing written.
//! 5. Otherwise a new click id is minted and the click recorded under the visitor key (the
//!    `ref_vid` cookie when present and valid, else the keyed hash of IP + User-Agent). A repeat
//!    within the hour returns the original id. The answer waits at most `write_timeout` for the
//!    write; a failed or slow write is logged and the new (valid, verifiable) id is used anyway.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use storage::links::{self, Click, ClickOutcome};
use storage::SharedClock;
use tracking::KeyRing;

use crate::config::Config;
use crate::directory::{LinkDirectory, LinkWithProgram};
use crate::recorder::ClickRecorder;
use crate::request::{ClickRequest, CLICK_COOKIE, VISITOR_COOKIE};
use crate::response;

/// One counted click per (link, visitor) per hour of business time (`rules::attribution`).
pub use rules::attribution::CLICK_DEDUP_WINDOW_MS as DEDUP_WINDOW_MS;

/// Everything built once per execution environment and lent to every request.
pub struct Deps<D, R> {
    pub directory: D,
    pub recorder: R,
    pub keys: KeyRing,
    pub config: Config,
    /// Technical time: cache TTLs and the write deadline (never business time).
    pub clock: SharedClock,
}

/// What a request amounted to (logged; asserted by tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new click, stored and counted.
    Counted { click_id: String },
    /// A repeat within the hour: the original click id, counted once.
    Repeat { click_id: String },
    /// The click could not be recorded in time (failed or still running): the new id is valid
    /// but may not have been counted.
    Unrecorded { click_id: String, reason: String },
    /// HEAD, prefetch or bot: redirected without a click id.
    NotCounted(tracking::NonHuman),
    /// Redirected without a click id for a technical reason (no business time in the event, no
    /// randomness available).
    Untracked(&'static str),
    /// Unknown code, disabled link or paused program.
    NotLive,
    /// The link could not be looked up.
    LookupFailed,
}

impl Outcome {
    /// The click id handed to the visitor, if any.
    pub fn click_id(&self) -> Option<&str> {
        match self {
            Outcome::Counted { click_id }
            | Outcome::Repeat { click_id }
            | Outcome::Unrecorded { click_id, .. } => Some(click_id),
            _ => None,
        }
    }
}

/// Lambda entry point: never fails, every request gets an answer.
pub async fn handle<D: LinkDirectory, R: ClickRecorder>(
    deps: &Deps<D, R>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    if crate::script::is_script_request(&req) {
        let resp = crate::script::serve(&deps.directory, &deps.config, &req).await;
        tracing::info!(status = resp.status().as_u16(), "t.js");
        return Ok(resp);
    }
    let click = ClickRequest::from_http(&req);
    let (resp, outcome) = redirect(deps, &click).await;
    tracing::info!(
        code = click.code.as_deref().unwrap_or(""),
        sub_id = click.sub_id.as_deref().unwrap_or(""),
        status = resp.status().as_u16(),
        outcome = ?outcome,
        "redirect"
    );
    Ok(resp)
}

/// The whole decision, from a parsed request to a response.
pub async fn redirect<D: LinkDirectory, R: ClickRecorder>(
    deps: &Deps<D, R>,
    r: &ClickRequest,
) -> (Response<Body>, Outcome) {
    let Some(code) = r.code.as_deref().filter(|c| links::valid_code(c)) else {
        return (deps.not_live(), Outcome::NotLive);
    };
    let entry = match deps.directory.link(code).await {
        Ok(Some(e)) if e.is_live() => e,
        Ok(_) => return (deps.not_live(), Outcome::NotLive),
        Err(e) => {
            tracing::error!(error = %e, code, "link lookup failed");
            return (deps.not_live(), Outcome::LookupFailed);
        }
    };
    let destination = tracking::resolve_destination(
        &entry.default_destination(),
        r.to.as_deref(),
        &entry.program.deep_link_hosts,
    );
    if let Some(why) = r.non_human() {
        return (
            response::redirect(&destination, &[]),
            Outcome::NotCounted(why),
        );
    }
    let Some(at_ms) = r.at_ms else {
        tracing::warn!(
            code,
            "event without requestContext.timeEpoch: click not tracked"
        );
        return (
            response::redirect(&destination, &[]),
            Outcome::Untracked("no business time"),
        );
    };
    match deps.track(&entry, r, at_ms).await {
        Ok((visitor_id, outcome)) => {
            let days = entry.program.cookie_days;
            let domain = deps.config.cookie_domain.as_deref();
            let mut cookies = vec![response::cookie(VISITOR_COOKIE, &visitor_id, days, domain)];
            let mut location = destination;
            if let Some(id) = outcome.click_id() {
                cookies.push(response::cookie(CLICK_COOKIE, id, days, domain));
                location = tracking::append_query(&location, &deps.config.click_param, id);
            }
            (response::redirect(&location, &cookies), outcome)
        }
        Err(why) => {
            tracing::error!(code, why, "click not tracked");
            (
                response::redirect(&destination, &[]),
                Outcome::Untracked(why),
            )
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], &'static str> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| "no randomness")?;
    Ok(b)
}

impl<D: LinkDirectory, R: ClickRecorder> Deps<D, R> {
    fn not_live(&self) -> Response<Body> {
        match &self.config.fallback_url {
            Some(url) => response::redirect(url, &[]),
            None => response::not_found_page(),
        }
    }

    /// Visitor id and click outcome of a human click on a live link.
    async fn track(
        &self,
        entry: &Arc<LinkWithProgram>,
        r: &ClickRequest,
        at_ms: i64,
    ) -> Result<(String, Outcome), &'static str> {
        let code = entry.link.code.as_str();
        let cookie_visitor = r
            .visitor_cookie
            .as_deref()
            .filter(|v| tracking::valid_visitor_id(v));
        let visitor_id = match cookie_visitor {
            Some(v) => v.to_string(),
            None => tracking::new_visitor_id(random()?),
        };

        // The browser already carries this link's click from the last hour: a repeat, no write.
        if let Some(prev) = r.click_cookie.as_deref() {
            if let Ok(claims) = self.keys.verify_click_id(prev) {
                if claims.is_for_link(code)
                    && rules::attribution::is_repeat_click(claims.at_ms, at_ms)
                {
                    let click_id = prev.to_string();
                    return Ok((visitor_id, Outcome::Repeat { click_id }));
                }
            }
        }

        let visitor_key = match cookie_visitor {
            Some(v) => format!("v.{v}"),
            None => format!(
                "h.{}",
                tracking::visitor_key_hash(
                    self.keys.current(),
                    r.source_ip.as_deref().unwrap_or(""),
                    r.user_agent.as_deref().unwrap_or(""),
                )
            ),
        };
        let click_id = self
            .keys
            .new_click_id(code, at_ms, random()?)
            .map_err(|_| "business time out of range")?;
        let click = Click {
            click_id: click_id.clone(),
            link_code: code.to_string(),
            partner_id: entry.link.partner_id.clone(),
            program_id: entry.link.program_id.clone(),
            visitor_id: visitor_id.clone(),
            sub_id: r.sub_id.clone(),
            at_ms,
        };
        let outcome = match self
            .record_bounded(click, visitor_key, entry.program.cookie_days)
            .await
        {
            Ok(ClickOutcome::Counted) => Outcome::Counted { click_id },
            Ok(ClickOutcome::Repeat { original_click_id }) => Outcome::Repeat {
                click_id: original_click_id,
            },
            Err(reason) => {
                tracing::warn!(
                    code,
                    click_id,
                    reason,
                    "click write failed or slow; answering anyway"
                );
                Outcome::Unrecorded { click_id, reason }
            }
        };
        Ok((visitor_id, outcome))
    }

    /// Record the click in a task of its own and wait for it at most `write_timeout` (on the
    /// injected clock). A write still running then is left to finish on its own.
    async fn record_bounded(
        &self,
        click: Click,
        visitor_key: String,
        cookie_days: u32,
    ) -> Result<ClickOutcome, String> {
        let recorder = self.recorder.clone();
        let task = tokio::spawn(async move {
            recorder
                .record(&click, &visitor_key, DEDUP_WINDOW_MS, cookie_days)
                .await
        });
        tokio::select! {
            biased;
            joined = task => match joined {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(e)) => Err(format!("write failed: {e}")),
                Err(e) => Err(format!("write task failed: {e}")),
            },
            _ = self.clock.sleep(self.config.write_timeout) => Err(format!(
                "write still running after {} ms",
                self.config.write_timeout.as_millis()
            )),
        }
    }
}
