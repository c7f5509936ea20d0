//! The resilient client for service-to-service calls: connect and request timeouts on every
//! call, retries with jittered exponential backoff for idempotent requests only, a circuit
//! breaker that fails fast after repeated failures, and `x-request-id` / `traceparent`
//! propagation. The base URL may list several replicas (comma-separated): calls take turns,
//! and a replica that refuses the connection is skipped for the next one at once, whatever the
//! method, since nothing was sent (see [`crate::replicas`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ClientConfig;
use crate::error::ApiError;
use crate::replicas::{EjectionPolicy, Replicas};

/// Why a call to another service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{service} is unavailable (circuit open after repeated failures)")]
    CircuitOpen { service: String },
    #[error("{service} did not answer within {timeout_ms} ms")]
    Timeout { service: String, timeout_ms: u64 },
    #[error("{service} is unreachable: {reason}")]
    Unreachable { service: String, reason: String },
    #[error("{service} answered {status}")]
    Status { service: String, status: StatusCode, body: bytes::Bytes },
    #[error("{service} answered with a body that could not be read: {reason}")]
    Decode { service: String, reason: String },
}

impl ClientError {
    /// The status the other service answered, for errors that are answers.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The other service's problem body, when it answered with one.
    pub fn problem(&self) -> Option<serde_json::Value> {
        match self {
            ClientError::Status { body, .. } => serde_json::from_slice(body).ok(),
            _ => None,
        }
    }
}

impl From<ClientError> for ApiError {
    /// A dependency that is down, slow or broken is this service's 503; its 4xx answers are
    /// the caller's to interpret and arrive here only when unexpected.
    fn from(err: ClientError) -> Self {
        match &err {
            ClientError::Status { status, .. } if status.is_client_error() => ApiError::internal(err),
            _ => ApiError::unavailable(err.to_string()),
        }
    }
}

/// A client for one other service at one or more base URLs. Clones share the pool, the
/// replicas' health and the breaker.
#[derive(Clone)]
pub struct ServiceClient {
    service: Arc<str>,
    replicas: Arc<Replicas>,
    http: reqwest::Client,
    config: ClientConfig,
    breaker: Arc<CircuitBreaker>,
}

/// One request to send; build with [`ServiceClient::request`].
pub struct ServiceRequest {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<bytes::Bytes>,
    idempotent: bool,
}

impl ServiceRequest {
    /// Sends `body` as JSON.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = serde_json::to_vec(body).ok().map(bytes::Bytes::from);
        self.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        self
    }

    /// Authenticates as `token` (the caller's, or this service's own).
    pub fn bearer(mut self, token: &str) -> Self {
        if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            self.headers.insert(http::header::AUTHORIZATION, value);
        }
        self
    }

    /// Sets a header of the request (for example an `Idempotency-Key` passed on).
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Declares a POST/PATCH safe to retry (for example one keyed by an idempotency key).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

impl ServiceClient {
    /// A client for `service` (its name, for errors and logs) at `base_url`, or at each of a
    /// comma-separated list of replicas' base URLs.
    pub fn new(service: &str, base_url: &str, config: ClientConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let breaker = Arc::new(CircuitBreaker::new(
            config.breaker_failures,
            Duration::from_millis(config.breaker_cooldown_ms),
        ));
        // A replica that refused a connection sits out the breaker's cooldown.
        let policy = EjectionPolicy {
            failures: config.breaker_failures,
            ejection: Duration::from_millis(config.breaker_cooldown_ms),
        };
        let replicas = Arc::new(Replicas::new(crate::replicas::split_urls(base_url), policy));
        Self { service: service.into(), replicas, http, config, breaker }
    }

    /// Starts a request; GET, HEAD, PUT and DELETE are idempotent by their method.
    pub fn request(&self, method: Method, path: &str) -> ServiceRequest {
        let idempotent =
            matches!(method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS);
        ServiceRequest { method, path: path.to_owned(), headers: HeaderMap::new(), body: None, idempotent }
    }

    /// GET `path` and decode the JSON answer; any non-2xx is an error.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self.request(Method::GET, path);
        if let Some(token) = bearer {
            request = request.bearer(token);
        }
        self.send_json(request).await
    }

    /// Sends and decodes the JSON answer; any non-2xx is [`ClientError::Status`].
    pub async fn send_json<T: DeserializeOwned>(&self, request: ServiceRequest) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.decode_error(e.to_string()))?;
        if !status.is_success() {
            return Err(ClientError::Status { service: self.service.to_string(), status, body });
        }
        serde_json::from_slice(&body).map_err(|e| self.decode_error(e.to_string()))
    }

    /// Sends with retries (idempotent requests only) and the circuit breaker; answers any
    /// status the other service gave.
    pub async fn send(&self, request: ServiceRequest) -> Result<reqwest::Response, ClientError> {
        let attempts = if request.idempotent { self.config.retries + 1 } else { 1 };
        let mut last_error = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(self.config.backoff_ms, attempt)).await;
            }
            // Held across the call: if this future is dropped mid-call, the permit's drop
            // hands a half-open trial on to the next caller instead of keeping it forever.
            let Some(permit) = self.breaker.permit() else {
                return Err(ClientError::CircuitOpen { service: self.service.to_string() });
            };
            match self.send_to_a_replica(&request).await {
                Ok(response) if is_retryable_status(response.status()) => {
                    permit.failure();
                    if attempt + 1 == attempts {
                        return Ok(response);
                    }
                    last_error = Some(ClientError::Status {
                        service: self.service.to_string(),
                        status: response.status(),
                        body: bytes::Bytes::new(),
                    });
                }
                Ok(response) => {
                    permit.success();
                    return Ok(response);
                }
                Err(err) => {
                    permit.failure();
                    tracing::debug!(service = %self.service, attempt, error = %err, "call failed");
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Unreachable {
            service: self.service.to_string(),
            reason: "no attempt was made".into(),
        }))
    }

    /// One attempt: the replicas in turn until one takes the connection.
    async fn send_to_a_replica(&self, request: &ServiceRequest) -> Result<reqwest::Response, ClientError> {
        let mut refused = None;
        for replica in self.replicas.order() {
            match self.send_once(replica, request).await {
                Ok(response) => {
                    if is_retryable_status(response.status()) {
                        self.replicas.failed(replica);
                    } else {
                        self.replicas.succeeded(replica);
                    }
                    return Ok(response);
                }
                // Nothing was sent: the next replica may take it, whatever the method.
                Err(Failure::Connect(err)) => {
                    self.replicas.refused(replica);
                    refused = Some(err);
                }
                Err(Failure::Other(err)) => {
                    self.replicas.failed(replica);
                    return Err(err);
                }
            }
        }
        Err(refused.unwrap_or_else(|| ClientError::Unreachable {
            service: self.service.to_string(),
            reason: "no replica is configured".into(),
        }))
    }

    async fn send_once(
        &self,
        replica: usize,
        request: &ServiceRequest,
    ) -> Result<reqwest::Response, Failure> {
        let url = format!("{}{}", self.replicas.url(replica), request.path);
        let mut headers = request.headers.clone();
        crate::telemetry::inject_context(&mut headers);
        let mut builder = self.http.request(request.method.clone(), &url).headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder.send().await.map_err(|e| {
            if e.is_timeout() {
                Failure::Other(ClientError::Timeout {
                    service: self.service.to_string(),
                    timeout_ms: self.config.request_timeout_ms,
                })
            } else {
                let err =
                    ClientError::Unreachable { service: self.service.to_string(), reason: root_cause(&e) };
                if e.is_connect() { Failure::Connect(err) } else { Failure::Other(err) }
            }
        })
    }

    fn decode_error(&self, reason: String) -> ClientError {
        ClientError::Decode { service: self.service.to_string(), reason }
    }
}

/// How one call to one replica failed.
enum Failure {
    /// The connection was not made: nothing was sent.
    Connect(ClientError),
    Other(ClientError),
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
}

/// Exponential backoff with full jitter: uniform in `[0, base * 2^(attempt-1)]`.
fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let ceiling = base_ms.saturating_mul(1 << (attempt.saturating_sub(1)).min(10));
    Duration::from_millis(fastrand::u64(0..=ceiling))
}

/// Counts consecutive failures; when they reach the threshold the circuit opens and calls fail
/// fast until the cooldown has passed, then one trial call decides whether it closes again.
///
/// Every call goes out under a [`CallPermit`] that reports its outcome. A trial whose permit is
/// dropped without an outcome (its future was cancelled: the client went away, a caller's own
/// timeout) says nothing about the other service, so the next call becomes the trial; without
/// that the circuit would stay half-open, failing every call fast, until the process restarts.
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// Leave for one call through a [`CircuitBreaker`]; report the call's outcome with
/// [`CallPermit::success`] or [`CallPermit::failure`].
#[must_use = "a permit reports the outcome of the call it was taken for"]
pub struct CallPermit<'a> {
    breaker: &'a CircuitBreaker,
    /// This call is the half-open trial.
    trial: bool,
    /// Its outcome was reported.
    settled: bool,
}

impl CallPermit<'_> {
    /// The call succeeded: the circuit closes.
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.record_success();
    }

    /// The call failed: one more consecutive failure, or the circuit opens again.
    pub fn failure(self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(mut self, now: Instant) {
        self.settled = true;
        self.breaker.record_failure_at(now);
    }
}

impl Drop for CallPermit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.settled {
            self.breaker.abandon_trial_at(Instant::now());
        }
    }
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    /// Leave for a call now, or `None` while the circuit fails fast.
    pub fn permit(&self) -> Option<CallPermit<'_>> {
        self.permit_at(Instant::now())
    }

    fn permit_at(&self, now: Instant) -> Option<CallPermit<'_>> {
        let mut state = self.lock();
        let trial = match *state {
            BreakerState::Closed { .. } => false,
            BreakerState::Open { until } if now >= until => {
                *state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => return None,
        };
        Some(CallPermit { breaker: self, trial, settled: false })
    }

    fn record_success(&self) {
        *self.lock() = BreakerState::Closed { failures: 0 };
    }

    fn record_failure_at(&self, now: Instant) {
        let mut state = self.lock();
        *state = match *state {
            BreakerState::Closed { failures } if failures + 1 < self.threshold => {
                BreakerState::Closed { failures: failures + 1 }
            }
            _ => BreakerState::Open { until: now + self.cooldown },
        };
    }

    /// A trial ended without an outcome: the next call may try at once.
    fn abandon_trial_at(&self, now: Instant) {
        let mut state = self.lock();
        if *state == BreakerState::HalfOpen {
            *state = BreakerState::Open { until: now };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        // A poisoned lock only means a panic elsewhere while holding it; the state is a value.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn breaker_opens_after_threshold_and_half_opens_after_cooldown() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..2 {
            breaker.record_failure_at(t0);
        }
        assert!(breaker.permit_at(t0).is_some(), "two failures keep it closed");
        breaker.record_failure_at(t0);
        assert!(breaker.permit_at(secs(t0, 1)).is_none(), "third failure opens it");
        let trial = breaker.permit_at(secs(t0, 11)).expect("one trial after the cooldown");
        assert!(breaker.permit_at(secs(t0, 11)).is_none(), "only one trial at a time");
        trial.success();
        assert!(breaker.permit_at(secs(t0, 12)).is_some());
    }

    #[test]
    fn failed_trial_reopens_the_circuit() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(5));
        let t0 = Instant::now();
        breaker.record_failure_at(t0);
        let trial = breaker.permit_at(secs(t0, 6)).expect("a trial after the cooldown");
        trial.failure_at(secs(t0, 6));
        assert!(breaker.permit_at(secs(t0, 7)).is_none());
    }

    #[test]
    fn a_dropped_trial_hands_the_trial_to_the_next_call() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(5));
        let t0 = Instant::now();
        breaker.record_failure_at(t0);
        let trial = breaker.permit_at(secs(t0, 6)).expect("a trial after the cooldown");
        drop(trial);
        let next = breaker.permit_at(secs(t0, 6)).expect("the circuit is not stuck half-open");
        assert!(next.trial, "the next call is the trial, not a free pass");
        assert!(breaker.permit_at(secs(t0, 6)).is_none(), "still one trial at a time");
    }

    #[test]
    fn a_dropped_call_while_closed_changes_nothing() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(5));
        let t0 = Instant::now();
        breaker.record_failure_at(t0);
        drop(breaker.permit_at(t0));
        breaker.record_failure_at(t0);
        assert!(breaker.permit_at(t0).is_none(), "two consecutive failures still open it");
    }

    #[test]
    fn backoff_stays_within_its_doubling_ceiling() {
        for attempt in 1..6 {
            let ceiling = 50 * (1u64 << (attempt - 1));
            for _ in 0..100 {
                assert!(backoff(50, attempt) <= Duration::from_millis(ceiling));
            }
        }
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable_and_post_is_not_retried() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client =
            ServiceClient::new("ghost", &format!("http://127.0.0.1:{port}"), ClientConfig::default());
        let err = client.send(client.request(Method::POST, "/x")).await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
        assert_eq!(ApiError::from(err).status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_refused_replica_is_skipped_for_the_next_even_for_a_post() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/x", axum::routing::post(|| async { "taken" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bases = format!("http://127.0.0.1:{port}, http://{live}");
        let client =
            ServiceClient::new("pair", &bases, ClientConfig { retries: 0, ..ClientConfig::default() });
        for _ in 0..4 {
            let response = client.send(client.request(Method::POST, "/x")).await.unwrap();
            assert_eq!(response.text().await.unwrap(), "taken");
        }
    }

    #[tokio::test]
    async fn repeated_failures_open_the_circuit() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = ClientConfig { retries: 0, breaker_failures: 2, ..ClientConfig::default() };
        let client = ServiceClient::new("ghost", &format!("http://127.0.0.1:{port}"), config);
        for _ in 0..2 {
            let _ = client.send(client.request(Method::GET, "/")).await;
        }
        let err = client.send(client.request(Method::GET, "/")).await.unwrap_err();
        assert!(matches!(err, ClientError::CircuitOpen { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_trial_call_cancelled_by_its_caller_does_not_leave_the_circuit_open() {
        // A server that accepts and never answers: every call ends in the client's timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let config = ClientConfig {
            retries: 0,
            request_timeout_ms: 200,
            breaker_failures: 1,
            breaker_cooldown_ms: 1,
            ..ClientConfig::default()
        };
        let client = ServiceClient::new("silent", &format!("http://{addr}"), config);
        let err = client.send(client.request(Method::GET, "/")).await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");

        // Once the 1 ms cooldown has passed the next call is the trial; its caller gives up on
        // it before the other service answers.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let cancelled =
            tokio::time::timeout(Duration::from_millis(20), client.send(client.request(Method::GET, "/")));
        assert!(cancelled.await.is_err(), "the trial was still waiting when it was dropped");

        let err = client.send(client.request(Method::GET, "/")).await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "the next call is tried, not failed fast: {err}");
    }
}
