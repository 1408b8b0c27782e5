//! Reading a click out of an API Gateway HTTP API (payload 2.0) request.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Cookie holding the stable visitor id.
pub const VISITOR_COOKIE: &str = "ref_vid";
/// Cookie holding the latest click id (what the merchant's checkout passes on).
pub const CLICK_COOKIE: &str = "ref_click";

/// Everything the handler uses from the request, already picked apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickRequest {
    pub method: String,
    /// `{code}` of the route, unvalidated.
    pub code: Option<String>,
    /// Sub-id from `/r/{code}/{sub_id}` or `?sub=`, only when valid (see [`valid_sub_id`]).
    pub sub_id: Option<String>,
    /// `?to=` deep link, unvalidated.
    pub to: Option<String>,
    pub user_agent: Option<String>,
    pub source_ip: Option<String>,
    /// Business time: `requestContext.timeEpoch` (epoch ms), when present and positive.
    pub at_ms: Option<i64>,
    pub visitor_cookie: Option<String>,
    pub click_cookie: Option<String>,
    /// Headers (lower-case name, value) that can announce a prefetch.
    pub hint_headers: Vec<(String, String)>,
}

/// Sub-ids: `[A-Za-z0-9_.-]{1,64}`; anything else is ignored.
pub fn valid_sub_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

const HINT_HEADERS: &[&str] = &["purpose", "sec-purpose", "x-purpose", "x-moz"];

impl ClickRequest {
    pub fn from_http(req: &Request) -> Self {
        let path_params = req.path_parameters_ref();
        let from_params = |name: &str| path_params.and_then(|p| p.first(name)).map(str::to_string);
        // Without path parameters (e.g. a catch-all route), read `/r/{code}[/{sub_id}]`.
        let mut segments = req
            .uri()
            .path()
            .strip_prefix("/r/")
            .map(|rest| rest.split('/').map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter();
        let (path_code, path_sub) = (segments.next(), segments.next());
        let code = from_params("code").or(path_code).filter(|c| !c.is_empty());
        let path_sub = if path_params.is_some_and(|p| p.first("code").is_some()) {
            from_params("sub_id")
        } else {
            path_sub
        };

        let mut to = None;
        let mut query_sub = None;
        if let Some(q) = req.uri().query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                match k.as_ref() {
                    "to" if to.is_none() => to = Some(v.into_owned()),
                    "sub" if query_sub.is_none() => query_sub = Some(v.into_owned()),
                    _ => {}
                }
            }
        }
        let sub_id = path_sub
            .filter(|s| valid_sub_id(s))
            .or(query_sub.filter(|s| valid_sub_id(s)));

        let (ctx_ua, source_ip, at_ms) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.http.user_agent.clone(),
                ctx.http.source_ip.clone(),
                Some(ctx.time_epoch).filter(|t| *t > 0),
            ),
            _ => (None, None, None),
        };
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let user_agent = header("user-agent").or(ctx_ua);

        let mut visitor_cookie = None;
        let mut click_cookie = None;
        for value in req.headers().get_all("cookie") {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                let Some((name, v)) = pair.trim().split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match name.trim() {
                    VISITOR_COOKIE if visitor_cookie.is_none() => {
                        visitor_cookie = Some(v.to_string())
                    }
                    CLICK_COOKIE if click_cookie.is_none() => click_cookie = Some(v.to_string()),
                    _ => {}
                }
            }
        }

        let hint_headers = HINT_HEADERS
            .iter()
            .filter_map(|h| header(h).map(|v| (h.to_string(), v)))
            .collect();

        ClickRequest {
            method: req.method().as_str().to_string(),
            code,
            sub_id,
            to,
            user_agent,
            source_ip,
            at_ms,
            visitor_cookie,
            click_cookie,
            hint_headers,
        }
    }

    /// Why this request is not a person following the link, if it is not.
    pub fn non_human(&self) -> Option<tracking::NonHuman> {
        let hints: Vec<(&str, &str)> = self
            .hint_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        tracking::classify_non_human(&self.method, self.user_agent.as_deref(), &hints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ids() {
        assert!(valid_sub_id("spring-2026_v1.a"));
        assert!(!valid_sub_id(""));
        assert!(!valid_sub_id("a b"));
        assert!(!valid_sub_id("a#b"));
        assert!(!valid_sub_id(&"a".repeat(65)));
    }
}
