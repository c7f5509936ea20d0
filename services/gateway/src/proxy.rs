//! Forwarding a request unchanged to the service owning its path, streamed, within a timeout.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, Method, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kit::ApiError;

use crate::forwarded::TrustedProxies;
use crate::routing::Upstream;
use crate::{forwarded, limits};

/// The pooled HTTP/1.1 client that carries proxied requests.
type UpstreamClient = Client<HttpConnector, Body>;

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
fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector)
}

/// Bodies up to this size (as `Content-Length` declares) are read before the first attempt, so
/// that the request can go to another replica when one refuses the connection (or, for an
/// idempotent method, breaks it); larger or unannounced bodies stream through, once.
const REPLAYABLE_BODY_BYTES: u64 = 64 * 1024;

/// What carries requests to the upstreams: the pooled client, how long an upstream may take to
/// start answering, and whose forwarding headers are believed.
pub(crate) struct Proxy {
    client: UpstreamClient,
    upstream_timeout: Duration,
    trusted_proxies: TrustedProxies,
}

impl Proxy {
    /// Connecting gives up after `connect_timeout`; response headers are awaited
    /// `upstream_timeout` (504 after).
    pub fn new(
        connect_timeout: Duration,
        upstream_timeout: Duration,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        Self { client: upstream_client(connect_timeout), upstream_timeout, trusted_proxies }
    }

    /// Sends `request` to `upstream` with a body of at most `limit` bytes (413 past it), and
    /// answers the upstream's response, or the gateway's problem when there is none.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        request: Request,
        limit: usize,
    ) -> Result<Response, ApiError> {
        if limits::declares_more_than(&request, limit) {
            return Err(ApiError::payload_too_large(Some(limit)));
        }
        let peer = forwarded::peer_ip(&request);
        let (head, body) = limits::limit_body(request, limit).into_parts();
        let body = OutgoingBody::prepare(&head.headers, body, limit).await?;
        let started = Instant::now();
        let result = self.exchange(upstream, Outgoing { head: &head, peer }, body, limit).await;
        record_upstream_call(&upstream.name, &result, started.elapsed());
        result
    }
}

/// The client's request as received, to be sent to one replica or, in turn, several.
struct Outgoing<'a> {
    head: &'a http::request::Parts,
    peer: Option<std::net::IpAddr>,
}

/// The request body: read already (so it can be sent again), or streamed through once.
enum OutgoingBody {
    Replayable(Bytes),
    Streamed(Option<Body>),
}

impl OutgoingBody {
    /// Reads a small declared body (or notes there is none); leaves any other to stream.
    async fn prepare(headers: &HeaderMap, body: Body, limit: usize) -> Result<Self, ApiError> {
        if headers.contains_key(header::TRANSFER_ENCODING) {
            return Ok(Self::Streamed(Some(body)));
        }
        let declared =
            headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        match declared {
            Some(length) if length > REPLAYABLE_BODY_BYTES => Ok(Self::Streamed(Some(body))),
            _ => match body.collect().await {
                Ok(collected) => Ok(Self::Replayable(collected.to_bytes())),
                Err(failure) => Err(client_fault(&failure, limit).unwrap_or_else(|| {
                    ApiError::bad_request(format!("the request body could not be read: {failure}"))
                })),
            },
        }
    }

    /// The body for the next attempt; `None` once a streamed body has been sent.
    fn for_attempt(&mut self) -> Option<Body> {
        match self {
            Self::Replayable(bytes) => Some(Body::from(bytes.clone())),
            Self::Streamed(body) => body.take(),
        }
    }

    fn is_replayable(&self) -> bool {
        matches!(self, Self::Replayable(_))
    }
}

/// Sends the request to the upstream's replicas in turn until one answers, waiting for each
/// one's response headers at most the upstream timeout. Another replica is tried only when
/// that is safe: the connection was refused (nothing was sent), or the method is idempotent;
/// and only with a body that can be sent again. An answer, any answer, ends it.
impl Proxy {
    async fn exchange(
        &self,
        upstream: &Upstream,
        request: Outgoing<'_>,
        mut body: OutgoingBody,
        limit: usize,
    ) -> Result<Response, ApiError> {
        let idempotent = is_idempotent(&request.head.method);
        let order = upstream.replicas.order();
        let mut failed = None;
        for (attempt, &replica) in order.iter().enumerate() {
            let Some(this_body) = body.for_attempt() else { break };
            let outgoing = upstream_request(&request, this_body, upstream, replica, &self.trusted_proxies)
                .map_err(ApiError::internal)?;
            let another = attempt + 1 < order.len() && body.is_replayable();
            match tokio::time::timeout(self.upstream_timeout, self.client.request(outgoing)).await {
                Ok(Ok(response)) => {
                    if is_failure_status(response.status()) {
                        upstream.replicas.failed(replica);
                    } else {
                        upstream.replicas.succeeded(replica);
                    }
                    return Ok(client_response(response));
                }
                Ok(Err(failure)) => {
                    if let Some(fault) = client_fault(&failure, limit) {
                        return Err(fault);
                    }
                    let nothing_sent = failure.is_connect();
                    if nothing_sent {
                        upstream.replicas.refused(replica);
                    } else {
                        upstream.replicas.failed(replica);
                    }
                    let refusal = upstream_failure(upstream, &failure);
                    if another && (nothing_sent || idempotent) {
                        tracing::debug!(upstream = %upstream.name, replica = upstream.replicas.url(replica), error = %refusal.detail(), "trying another replica");
                        failed = Some(refusal);
                        continue;
                    }
                    return Err(refusal);
                }
                Err(_elapsed) => {
                    upstream.replicas.failed(replica);
                    return Err(ApiError::gateway_timeout(format!(
                        "the {} service did not answer within {} ms",
                        upstream.name,
                        self.upstream_timeout.as_millis()
                    )));
                }
            }
        }
        Err(failed.unwrap_or_else(|| {
            ApiError::unavailable(format!("the {} service is unavailable", upstream.name))
        }))
    }
}

/// Methods a server must treat as safe to repeat (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Answers that count against a replica's health.
fn is_failure_status(status: StatusCode) -> bool {
    matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
}

/// The request as replica `replica` gets it: same method, path, query and body; hop-by-hop
/// headers dropped; `Host` that of the replica; forwarding headers set; request id and trace
/// context of the current request span injected.
fn upstream_request(
    request: &Outgoing<'_>,
    body: Body,
    upstream: &Upstream,
    replica: usize,
    proxies: &TrustedProxies,
) -> Result<Request, http::Error> {
    let head = request.head;
    let path_and_query = head.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut headers = head.headers.clone();
    strip_hop_by_hop(&mut headers);
    // The client sets Host from the upstream URI; the original stays in X-Forwarded-Host.
    headers.remove(header::HOST);
    proxies.set_forwarding_headers(&mut headers, &head.headers, request.peer);
    kit::telemetry::inject_context(&mut headers);
    let mut outgoing = Request::new(body);
    *outgoing.method_mut() = head.method.clone();
    *outgoing.uri_mut() = upstream.uri_for(replica, path_and_query)?;
    *outgoing.version_mut() = Version::HTTP_11;
    *outgoing.headers_mut() = headers;
    Ok(outgoing)
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

/// The client's fault in a failed exchange, if it is: a body cut off at the limit is its 413, a
/// body that could not be read (a malformed chunked encoding) its 400.
fn client_fault(failure: &(dyn std::error::Error + 'static), limit: usize) -> Option<ApiError> {
    if limits::exceeded_body_limit(failure) {
        return Some(ApiError::payload_too_large(Some(limit)));
    }
    limits::client_body_failed(failure).map(|unreadable| ApiError::bad_request(unreadable.to_string()))
}

/// An exchange that failed on the upstream's side: it is down or broke the connection, 503
/// naming it.
fn upstream_failure(upstream: &Upstream, failure: &hyper_util::client::legacy::Error) -> ApiError {
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
