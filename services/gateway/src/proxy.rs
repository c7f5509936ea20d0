//! Forwarding a request unchanged to the service owning its path, streamed, within a timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, Version, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kit::ApiError;

use crate::forwarded::TrustedProxies;
use crate::routing::Upstream;
use crate::state::AppState;
use crate::{forwarded, limits};

/// The pooled HTTP/1.1 client that carries proxied requests.
pub(crate) type UpstreamClient = Client<HttpConnector, Body>;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1); never forwarded.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A pooled client; connecting gives up after `connect_timeout` (a black-holed host), a refused
/// connection fails at once.
pub(crate) fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector)
}

/// Handler for every `/api/…` path without a gateway route of its own.
pub(crate) async fn forward(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let Some(route) = state.routes.resolve(path) else {
        return Err(ApiError::not_found(format!("no service serves {path}")));
    };
    let upstream = Arc::clone(&route.upstream);
    let limit = state.body_limits.for_path(path, route.body_limit_bytes);
    if limits::declares_more_than(&request, limit) {
        return Err(ApiError::payload_too_large(Some(limit)));
    }
    let request = limits::limit_body(request, limit);
    let outgoing =
        upstream_request(request, &upstream, &state.trusted_proxies).map_err(ApiError::internal)?;
    let started = Instant::now();
    let result = exchange(&state, &upstream, outgoing, limit).await;
    record_upstream_call(&upstream.name, &result, started.elapsed());
    result
}

/// Sends `outgoing` and waits for the response headers, at most the upstream timeout.
async fn exchange(
    state: &AppState,
    upstream: &Upstream,
    outgoing: Request,
    limit: usize,
) -> Result<Response, ApiError> {
    match tokio::time::timeout(state.upstream_timeout, state.client.request(outgoing)).await {
        Ok(Ok(response)) => Ok(client_response(response)),
        Ok(Err(failure)) => Err(upstream_failure(upstream, &failure, limit)),
        Err(_elapsed) => Err(ApiError::gateway_timeout(format!(
            "the {} service did not answer within {} ms",
            upstream.name,
            state.upstream_timeout.as_millis()
        ))),
    }
}

/// The request as the upstream gets it: same method, path, query and body; hop-by-hop headers
/// dropped; `Host` that of the upstream; forwarding headers set; request id and trace context of
/// the current request span injected.
fn upstream_request(
    request: Request,
    upstream: &Upstream,
    proxies: &TrustedProxies,
) -> Result<Request, http::Error> {
    let peer = forwarded::peer_ip(&request);
    let (mut parts, body) = request.into_parts();
    let path_and_query =
        parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = upstream.uri_for(path_and_query)?;
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    // The client sets Host from the upstream URI; the original stays in X-Forwarded-Host.
    headers.remove(header::HOST);
    proxies.set_forwarding_headers(&mut headers, &parts.headers, peer);
    kit::telemetry::inject_context(&mut headers);
    parts.headers = headers;
    parts.version = Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    Ok(Request::from_parts(parts, body))
}

/// The upstream's answer as the client gets it, its body streamed through.
fn client_response(response: http::Response<hyper::body::Incoming>) -> Response {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

/// Removes hop-by-hop headers, including any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
}

/// A failed exchange: a body cut off at the limit is the client's 413, a body that could not be
/// read (a malformed chunked encoding) the client's 400; anything else means the upstream is down
/// or broke the connection, 503 naming it.
fn upstream_failure(
    upstream: &Upstream,
    failure: &hyper_util::client::legacy::Error,
    limit: usize,
) -> ApiError {
    if limits::exceeded_body_limit(failure) {
        return ApiError::payload_too_large(Some(limit));
    }
    if let Some(unreadable) = limits::client_body_failed(failure) {
        return ApiError::bad_request(unreadable.to_string());
    }
    let cause = root_cause(failure);
    if failure.is_connect() {
        ApiError::unavailable(format!("the {} service is unavailable ({cause})", upstream.name))
    } else {
        ApiError::unavailable(format!("the {} service failed to answer ({cause})", upstream.name))
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Counts each proxied call by upstream and outcome (the status, or the gateway's own answer).
fn record_upstream_call(upstream: &str, result: &Result<Response, ApiError>, elapsed: Duration) {
    let status = match result {
        Ok(response) => response.status(),
        Err(refused) => refused.status(),
    };
    let labels = [("upstream", upstream.to_owned()), ("status", status.as_u16().to_string())];
    metrics::counter!("gateway_upstream_requests_total", &labels).increment(1);
    metrics::histogram!("gateway_upstream_response_seconds", &labels).record(elapsed.as_secs_f64());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("x-secret-hop", "1"),
            ("authorization", "Bearer t"),
            ("content-type", "application/json"),
        ] {
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "content-type"]);
    }
}
