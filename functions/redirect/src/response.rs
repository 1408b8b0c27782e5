//! The responses the redirect sends: a `302` to the destination (with or without tracking
//! cookies), a `302` to the fallback URL, or a small static 404 page. None is cacheable.

use lambda_http::http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};

/// Longest cookie lifetime browsers keep (Chrome caps `Max-Age` at 400 days).
pub const MAX_COOKIE_DAYS: u32 = 400;

const NO_STORE: &str = "no-store, max-age=0";
/// The partner page's URL is not handed to the merchant beyond its origin, whatever the
/// partner page's own policy is.
const REFERRER: &str = "strict-origin-when-cross-origin";

const NOT_FOUND_HTML: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"robots\" content=\"noindex\"><title>Link not found</title></head>\
<body><h1>Link not found</h1><p>This link is unknown or no longer active.</p></body></html>\n";

/// A first-party tracking cookie: readable by the merchant's checkout script (so not
/// `HttpOnly`), sent on top-level navigations from other sites (`SameSite=Lax`), HTTPS only.
pub fn cookie(name: &str, value: &str, days: u32, domain: Option<&str>) -> String {
    let max_age = u64::from(days.clamp(1, MAX_COOKIE_DAYS)) * 86_400;
    let domain = domain.map(|d| format!("; Domain={d}")).unwrap_or_default();
    format!("{name}={value}; Max-Age={max_age}; Path=/{domain}; Secure; SameSite=Lax")
}

/// `302` to `location` with the given `Set-Cookie` values.
pub fn redirect(location: &str, cookies: &[String]) -> Response<Body> {
    let mut b = Response::builder()
        .status(StatusCode::FOUND)
        .header(LOCATION, location)
        .header(CACHE_CONTROL, NO_STORE)
        .header(REFERRER_POLICY, REFERRER)
        .header("x-robots-tag", "noindex, nofollow");
    for c in cookies {
        b = b.header(SET_COOKIE, c.as_str());
    }
    match b.body(Body::Empty) {
        Ok(r) => r,
        Err(e) => {
            // Only a stored destination with characters a header cannot hold gets here.
            tracing::error!(error = %e, "unusable redirect location");
            not_found_page()
        }
    }
}

/// The static 404 page (no request data is reflected in it).
pub fn not_found_page() -> Response<Body> {
    let mut r = Response::new(Body::Text(NOT_FOUND_HTML.to_string()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'"),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(
            cookie("ref_vid", "abc", 60, Some(".example.com")),
            "ref_vid=abc; Max-Age=5184000; Path=/; Domain=.example.com; Secure; SameSite=Lax"
        );
        assert_eq!(
            cookie("ref_click", "x", 3650, None),
            "ref_click=x; Max-Age=34560000; Path=/; Secure; SameSite=Lax"
        );
        assert!(!cookie("a", "b", 1, None).contains("HttpOnly"));
    }

    #[test]
    fn bad_locations_do_not_panic() {
        assert_eq!(
            redirect("https://a/\n", &[]).status(),
            StatusCode::NOT_FOUND
        );
        let ok = redirect("https://a/", &["c=1".into(), "d=2".into()]);
        assert_eq!(ok.status(), StatusCode::FOUND);
        assert_eq!(ok.headers().get_all(SET_COOKIE).iter().count(), 2);
    }
}
