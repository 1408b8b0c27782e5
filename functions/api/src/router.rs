//! The route table. Adding a route: one line in the `routes!` table below, one arm in
//! [`crate::handler::dispatch`], its operation in `docs/openapi.yaml` and its event in
//! template.yaml (the tests check the three agree).
//!
//! Paths are templates: a `{name}` segment matches one non-empty segment and is captured.

use std::collections::BTreeSet;

use lambda_http::http::Method;

use crate::problem::{ProblemKind, Scope};

macro_rules! routes {
    ($( $(#[$doc:meta])* $variant:ident = ($method:ident, $path:literal, success: [$($ok:literal),+], scopes: [$($scope:ident),*]), )*) => {
        /// Every operation the API serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Route {
            $( $(#[$doc])* $variant, )*
        }

        impl Route {
            /// Every route (generated with the enum, so it cannot miss one).
            pub const ALL: &'static [Route] = &[$(Route::$variant),*];

            pub fn method(self) -> Method {
                match self { $(Route::$variant => Method::$method,)* }
            }

            /// The path template (`{name}` segments are parameters), as in OpenAPI and the
            /// template's `HttpApi` events.
            pub fn path(self) -> &'static str {
                match self { $(Route::$variant => $path,)* }
            }

            /// Statuses of the route's successful answers.
            pub fn success_statuses(self) -> &'static [u16] {
                match self { $(Route::$variant => &[$($ok),+],)* }
            }

            /// The parts of the API whose problems this route can answer with.
            pub fn scopes(self) -> &'static [Scope] {
                match self { $(Route::$variant => &[$(Scope::$scope),*],)* }
            }
        }
    };
}

routes! {
    /// Bind a merchant's customer to the partner of a click id or partner code.
    TrackLead = (POST, "/v1/track/lead", success: [200, 201], scopes: [TrackingKeyAuth, JsonBody, Server, TrackLead]),
}

impl Route {
    /// The problem kinds this route can answer with.
    pub fn problems(self) -> Vec<ProblemKind> {
        ProblemKind::ALL
            .iter()
            .copied()
            .filter(|k| self.scopes().contains(&k.scope()))
            .collect()
    }

    /// Every status this route can answer with (successes and problems).
    pub fn statuses(self) -> BTreeSet<u16> {
        self.success_statuses()
            .iter()
            .copied()
            .chain(self.problems().into_iter().map(ProblemKind::status))
            .collect()
    }

    /// `POST /v1/track/lead`, as API Gateway's `routeKey`.
    pub fn route_key(self) -> String {
        format!("{} {}", self.method(), self.path())
    }
}

/// A matched route with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    pub params: Vec<(&'static str, String)>,
}

impl Matched {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    /// The path exists with these methods only.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
}

impl NoRoute {
    /// The `Allow` header value.
    pub fn allow_header(allow: &[Method]) -> String {
        allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn match_path(template: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = vec![];
    let mut want = template.trim_start_matches('/').split('/');
    let mut got = path.trim_start_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, g.to_string()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The route for this method and path (without the stage prefix).
pub fn match_route(method: &Method, path: &str) -> Result<Matched, NoRoute> {
    let mut allow = vec![];
    for route in Route::ALL {
        if let Some(params) = match_path(route.path(), path) {
            if route.method() == *method {
                return Ok(Matched {
                    route: *route,
                    params,
                });
            }
            allow.push(route.method());
        }
    }
    if allow.is_empty() {
        Err(NoRoute::NotFound)
    } else {
        Err(NoRoute::MethodNotAllowed { allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert_eq!(
            match_route(&Method::POST, "/v1/track/lead").map(|m| m.route),
            Ok(Route::TrackLead)
        );
        assert_eq!(
            match_route(&Method::GET, "/v1/track/lead"),
            Err(NoRoute::MethodNotAllowed {
                allow: vec![Method::POST]
            })
        );
        for p in [
            "/v1/track/lead/",
            "/v1/track",
            "/v1/track/lead/x",
            "/",
            "",
            "/V1/track/lead",
        ] {
            assert_eq!(match_route(&Method::POST, p), Err(NoRoute::NotFound), "{p}");
        }
    }

    #[test]
    fn templates_capture_parameters() {
        assert_eq!(
            match_path("/v1/partners/{partner_id}", "/v1/partners/alice"),
            Some(vec![("partner_id", "alice".to_string())])
        );
        assert_eq!(
            match_path("/v1/partners/{partner_id}", "/v1/partners/"),
            None
        );
        assert_eq!(
            match_path("/v1/partners/{partner_id}", "/v1/partners"),
            None
        );
    }

    #[test]
    fn track_lead_statuses() {
        assert_eq!(
            Route::TrackLead.statuses().into_iter().collect::<Vec<_>>(),
            vec![200, 201, 400, 401, 403, 404, 413, 415, 422, 500, 503]
        );
        assert_eq!(Route::TrackLead.route_key(), "POST /v1/track/lead");
        assert_eq!(
            NoRoute::allow_header(&[Method::GET, Method::POST]),
            "GET, POST"
        );
    }
}
