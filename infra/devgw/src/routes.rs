//! HTTP API route matching, as API Gateway does it: an exact route beats one with `{param}`
//! segments, which beats a greedy `{proxy+}` route, which beats `$default`; a route with the
//! request's method beats an `ANY` route.

use std::cmp::Ordering;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone)]
pub struct Route {
    /// `GET /r/{code}` or `$default`.
    pub route_key: String,
    /// Upper-case method, or `None` for `ANY`.
    method: Option<String>,
    segments: Vec<Segment>,
    is_default: bool,
    /// Index of the function (caller-defined).
    pub target: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub route_key: String,
    pub target: usize,
    /// Decoded path parameters (`proxy` for `{proxy+}`).
    pub params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a route (`method` upper-case or `ANY`; `path` like `/r/{code}` or `$default`).
    pub fn add(&mut self, method: &str, path: &str, target: usize) {
        let is_default = path == "$default";
        let segments = if is_default {
            vec![]
        } else {
            split(path)
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(p) => match p.strip_suffix('+') {
                            Some(g) => Segment::Greedy(g.to_string()),
                            None => Segment::Param(p.to_string()),
                        },
                        None => Segment::Literal(s.to_string()),
                    },
                )
                .collect()
        };
        let method = method.to_ascii_uppercase();
        let route_key = if is_default {
            "$default".to_string()
        } else {
            format!("{method} {path}")
        };
        self.routes.push(Route {
            route_key,
            method: (method != "ANY").then_some(method),
            segments,
            is_default,
            target,
        });
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The most specific route for this method and raw (percent-encoded) path.
    pub fn find(&self, method: &str, raw_path: &str) -> Option<RouteMatch> {
        let parts: Vec<&str> = split(raw_path).collect();
        let mut best: Option<(&Route, BTreeMap<String, String>)> = None;
        for r in &self.routes {
            if r.method.as_deref().is_some_and(|m| m != method) {
                continue;
            }
            let Some(params) = r.matches(&parts) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((b, _)) => r.specificity_cmp(b) == Ordering::Less,
            };
            if better {
                best = Some((r, params));
            }
        }
        best.map(|(r, params)| RouteMatch {
            route_key: r.route_key.clone(),
            target: r.target,
            params,
        })
    }
}

impl Route {
    fn matches(&self, parts: &[&str]) -> Option<BTreeMap<String, String>> {
        let mut params = BTreeMap::new();
        if self.is_default {
            return Some(params);
        }
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    if parts.get(i).map(|p| percent_decode(p)) != Some(l.clone()) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Param(name) => {
                    let p = parts.get(i)?;
                    params.insert(name.clone(), percent_decode(p));
                    i += 1;
                }
                Segment::Greedy(name) => {
                    // At least one segment, and everything that follows.
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(&parts[i..].join("/")));
                    i = parts.len();
                }
            }
        }
        (i == parts.len()).then_some(params)
    }

    /// Less is more specific.
    fn specificity_cmp(&self, other: &Route) -> Ordering {
        let rank = |r: &Route| -> (bool, bool, Vec<u8>, bool) {
            let kinds = r
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(_) => 0,
                    Segment::Param(_) => 1,
                    Segment::Greedy(_) => 2,
                })
                .collect();
            let greedy = r.segments.iter().any(|s| matches!(s, Segment::Greedy(_)));
            (r.is_default, greedy, kinds, r.method.is_none())
        };
        rank(self).cmp(&rank(other))
    }
}

/// Decode `%XX` escapes (invalid escapes are kept as they are; the result is lossy UTF-8).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits fit in a byte.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::new();
        r.add("GET", "/r/{code}", 0);
        r.add("GET", "/r/{code}/{sub_id}", 1);
        r.add("GET", "/r/special", 2);
        r.add("ANY", "/api/{proxy+}", 3);
        r.add("POST", "/api/partners", 4);
        r.add("ANY", "/api/partners/{id}", 5);
        r.add("GET", "/api/partners/{id}", 6);
        r
    }

    fn hit(r: &Router, m: &str, p: &str) -> Option<(usize, Vec<(String, String)>)> {
        r.find(m, p)
            .map(|m| (m.target, m.params.into_iter().collect::<Vec<_>>()))
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn params_and_literals() {
        let r = router();
        assert_eq!(
            hit(&r, "GET", "/r/alice"),
            Some((0, vec![kv("code", "alice")]))
        );
        assert_eq!(
            hit(&r, "GET", "/r/alice/yt-42"),
            Some((1, vec![kv("code", "alice"), kv("sub_id", "yt-42")]))
        );
        assert_eq!(hit(&r, "GET", "/r/special"), Some((2, vec![])));
        assert_eq!(
            hit(&r, "GET", "/r/alice/"),
            Some((0, vec![kv("code", "alice")]))
        );
        assert_eq!(hit(&r, "POST", "/r/alice"), None);
        assert_eq!(hit(&r, "GET", "/r"), None);
        assert_eq!(hit(&r, "GET", "/r/a/b/c"), None);
        assert_eq!(hit(&r, "GET", "/nothing"), None);
    }

    #[test]
    fn decoded_params() {
        let r = router();
        assert_eq!(
            hit(&r, "GET", "/r/al%20ice"),
            Some((0, vec![kv("code", "al ice")]))
        );
    }

    #[test]
    fn greedy_and_method_precedence() {
        let r = router();
        assert_eq!(hit(&r, "POST", "/api/partners"), Some((4, vec![])));
        assert_eq!(
            hit(&r, "GET", "/api/partners"),
            Some((3, vec![kv("proxy", "partners")]))
        );
        assert_eq!(
            hit(&r, "GET", "/api/partners/p1"),
            Some((6, vec![kv("id", "p1")]))
        );
        assert_eq!(
            hit(&r, "DELETE", "/api/partners/p1"),
            Some((5, vec![kv("id", "p1")]))
        );
        assert_eq!(
            hit(&r, "PUT", "/api/a/b/c"),
            Some((3, vec![kv("proxy", "a/b/c")]))
        );
        // a greedy variable needs at least one segment
        assert_eq!(hit(&r, "GET", "/api"), None);
    }

    #[test]
    fn default_route_is_the_last_resort() {
        let mut r = router();
        r.add("ANY", "$default", 9);
        assert_eq!(hit(&r, "GET", "/nothing"), Some((9, vec![])));
        assert_eq!(hit(&r, "GET", "/r/alice").map(|h| h.0), Some(0));
        assert_eq!(
            r.find("GET", "/x").map(|m| m.route_key),
            Some("$default".into())
        );
        assert_eq!(
            r.find("GET", "/r/x").map(|m| m.route_key),
            Some("GET /r/{code}".into())
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
