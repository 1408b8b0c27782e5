//! `GET /t.js?program={id}`: the first-party script a merchant puts on the landing page
//! (`t.js` beside this file, docs/integration.md). It keeps the visitor's click id in a cookie
//! on the merchant's own domain for the program's cookie days and hands it to checkout (Stripe
//! Payment Links' `client_reference_id`, a server-side Checkout Session, hidden form fields).
//!
//! The script is the same for every visitor: the program's cookie days and the click parameter
//! are filled in when it is served, and browsers and CDNs may keep it [`CACHE_SECONDS`]. The
//! program is read through the directory's cache, so a warm function makes no DynamoDB read.

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::config::Config;
use crate::directory::LinkDirectory;
use crate::response::MAX_COOKIE_DAYS;

/// The script's route.
pub const SCRIPT_PATH: &str = "/t.js";
/// How long browsers and CDNs may keep the script (a change of the program's cookie days
/// reaches visitors within it).
pub const CACHE_SECONDS: u32 = 300;

const TEMPLATE: &str = include_str!("t.js");
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The script for a program with `cookie_days`, reading `click_param` (validated by `Config`).
pub fn render(cookie_days: u32, click_param: &str) -> String {
    TEMPLATE
        .replace(
            "__COOKIE_DAYS__",
            &cookie_days.clamp(1, MAX_COOKIE_DAYS).to_string(),
        )
        .replace("__CLICK_PARAM__", click_param)
}

/// Whether a request is for the script.
pub fn is_script_request(req: &Request) -> bool {
    req.uri().path() == SCRIPT_PATH
}

fn answer(status: StatusCode, body: String, cache: &str) -> Response<Body> {
    let mut r = Response::new(Body::Text(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(JAVASCRIPT));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(CACHE_CONTROL, v);
    }
    r
}

/// A script that only says why nothing is served (shown in the page's console, not cached).
fn refusal(status: StatusCode, why: &str) -> Response<Body> {
    answer(
        status,
        format!(
            "/* partner-engine t.js: {why} */\nconsole.warn(\"partner-engine t.js: {why}\");\n"
        ),
        "no-store",
    )
}

/// Serve the script of `?program=`.
pub async fn serve<D: LinkDirectory>(
    directory: &D,
    config: &Config,
    req: &Request,
) -> Response<Body> {
    let program_id = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "program")
            .map(|(_, v)| v.into_owned())
    });
    let Some(program_id) = program_id.filter(|p| !p.is_empty()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "the script's URL needs ?program=<program id>",
        );
    };
    match directory.program(&program_id).await {
        Ok(Some(p)) => answer(
            StatusCode::OK,
            render(p.cookie_days, &config.click_param),
            &format!("public, max-age={CACHE_SECONDS}"),
        ),
        Ok(None) => refusal(StatusCode::NOT_FOUND, "no such program"),
        Err(e) => {
            tracing::error!(error = %e, "program lookup for t.js failed");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unavailable, try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_filled_in() {
        let js = render(60, "ref_click");
        assert!(js.contains("var DAYS = 60;"), "{js}");
        assert!(js.contains("var PARAM = \"ref_click\";"));
        assert!(!js.contains("__"), "every placeholder is replaced");
        assert!(render(10_000, "via").contains("var DAYS = 400;"));
        assert!(render(0, "via").contains("var DAYS = 1;"));
        // A few kilobytes, no dependency.
        assert!(js.len() < 5 * 1024, "{} bytes", js.len());
        assert!(!js.contains("import ") && !js.contains("require("));
    }
}
