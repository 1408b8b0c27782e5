//! The Lambda handler: route, authenticate, hand to the route's module, answer.
//!
//! Every request gets an answer (the handler never returns `Err`): a route's JSON on success,
//! problem details otherwise. Order of checks: route and method (404, 405), credentials (401),
//! then the route's own (body: 413, 415, 400; then the domain).

use lambda_http::http::header::{ALLOW, WWW_AUTHENTICATE};
use lambda_http::{Body, Request, Response};

use crate::ports::LeadTracker;
use crate::problem::{Problem, ProblemKind};
use crate::request::{self, RequestInfo};
use crate::router::{self, NoRoute, Route};
use crate::track_lead;

pub use crate::problem::{engine_problem, RETRY_AFTER_SECS};

/// Everything built once per execution environment and lent to every request.
pub struct Deps<T> {
    pub tracker: T,
}

fn unauthorized(kind: ProblemKind, detail: &str) -> Problem {
    let challenge = match kind {
        ProblemKind::UnknownTrackingKey => {
            r#"Bearer realm="partner-engine", error="invalid_token""#
        }
        _ => r#"Bearer realm="partner-engine""#,
    };
    Problem::new(kind, detail).with_header(WWW_AUTHENTICATE, challenge)
}

/// The program of the presented tracking key.
pub async fn authenticate<T: LeadTracker + ?Sized>(
    tracker: &T,
    req: &Request,
) -> Result<String, Problem> {
    let Some(key) = request::presented_tracking_key(req) else {
        return Err(unauthorized(
            ProblemKind::MissingTrackingKey,
            "send the program's tracking key as Authorization: Bearer <key> (or X-Tracking-Key)",
        ));
    };
    let plausible = key.len() <= request::MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic());
    let program = if plausible {
        tracker
            .program_for_key(&key)
            .await
            .map_err(engine_problem)?
    } else {
        None
    };
    program.ok_or_else(|| {
        unauthorized(
            ProblemKind::UnknownTrackingKey,
            "the tracking key is not valid for any program",
        )
    })
}

/// Lambda entry point.
pub async fn handle<T: LeadTracker>(
    deps: &Deps<T>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let info = RequestInfo::from_request(&req);
    let (route, result) = respond(deps, &req, &info).await;
    let resp = match result {
        Ok(resp) => resp,
        Err(p) => {
            debug_assert!(
                route.is_none_or(|r| r.problems().contains(&p.kind)),
                "{route:?} answered {:?}, outside its scopes",
                p.kind
            );
            // The detail may echo the caller's input (an e-mail): not logged.
            tracing::info!(problem = p.kind.slug(), "problem");
            p.into_response(info.request_id.as_deref())
        }
    };
    tracing::info!(
        method = %req.method(),
        path = %info.path,
        route = %route.map(Route::route_key).unwrap_or_default(),
        status = resp.status().as_u16(),
        request_id = info.request_id.as_deref().unwrap_or(""),
        "request"
    );
    Ok(resp)
}

/// The matched route (if any) and its answer.
pub async fn respond<T: LeadTracker>(
    deps: &Deps<T>,
    req: &Request,
    info: &RequestInfo,
) -> (Option<Route>, Result<Response<Body>, Problem>) {
    let matched = match router::match_route(req.method(), &info.path) {
        Ok(m) => m,
        Err(NoRoute::NotFound) => {
            let p = Problem::new(
                ProblemKind::RouteNotFound,
                format!("no route for {}", info.path),
            );
            return (None, Err(p));
        }
        Err(NoRoute::MethodNotAllowed { allow }) => {
            let allow = NoRoute::allow_header(&allow);
            let p = Problem::new(
                ProblemKind::MethodNotAllowed,
                format!("{} is served with {allow}", info.path),
            )
            .with_header(ALLOW, allow);
            return (None, Err(p));
        }
    };
    let route = matched.route;
    (Some(route), dispatch(deps, &matched, req, info).await)
}

/// One arm per route.
async fn dispatch<T: LeadTracker>(
    deps: &Deps<T>,
    matched: &router::Matched,
    req: &Request,
    info: &RequestInfo,
) -> Result<Response<Body>, Problem> {
    match matched.route {
        Route::TrackLead => {
            let program = authenticate(&deps.tracker, req).await?;
            track_lead::handle(&deps.tracker, &program, req, info).await
        }
    }
}
