//! The resilient client for service-to-service calls: connect and request timeouts on every
//! call, retries with jittered exponential backoff for idempotent requests only, a circuit
//! breaker that fails fast after repeated failures, and `x-request-id` / `traceparent`
//! propagation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ClientConfig;
use crate::error::ApiError;

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

/// A client for one other service at one base URL. Clones share the pool and the breaker.
#[derive(Clone)]
pub struct ServiceClient {
    service: Arc<str>,
    base: Arc<str>,
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

    /// Declares a POST/PATCH safe to retry (for example one keyed by an idempotency key).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

impl ServiceClient {
    /// A client for `service` (its name, for errors and logs) at `base_url`.
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
        Self { service: service.into(), base: base_url.trim_end_matches('/').into(), http, config, breaker }
    }

    pub fn base_url(&self) -> &str {
        &self.base
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
            if !self.breaker.allow() {
                return Err(ClientError::CircuitOpen { service: self.service.to_string() });
            }
            match self.send_once(&request).await {
                Ok(response) if is_retryable_status(response.status()) => {
                    self.breaker.record_failure();
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
                    self.breaker.record_success();
                    return Ok(response);
                }
                Err(err) => {
                    self.breaker.record_failure();
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

    async fn send_once(&self, request: &ServiceRequest) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.base, request.path);
        let mut headers = request.headers.clone();
        crate::telemetry::inject_context(&mut headers);
        let mut builder = self.http.request(request.method.clone(), &url).headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        builder.send().await.map_err(|e| {
            if e.is_timeout() {
                ClientError::Timeout {
                    service: self.service.to_string(),
                    timeout_ms: self.config.request_timeout_ms,
                }
            } else {
                ClientError::Unreachable { service: self.service.to_string(), reason: root_cause(&e) }
            }
        })
    }

    fn decode_error(&self, reason: String) -> ClientError {
        ClientError::Decode { service: self.service.to_string(), reason }
    }
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

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
        }
    }

    /// May a call go out now?
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until } if now >= until => {
                *state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => false,
        }
    }

    pub fn record_success(&self) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = BreakerState::Closed { failures: 0 };
    }

    pub fn record_failure(&self) {
        self.record_failure_at(Instant::now());
    }

    fn record_failure_at(&self, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = match *state {
            BreakerState::Closed { failures } if failures + 1 < self.threshold => {
                BreakerState::Closed { failures: failures + 1 }
            }
            _ => BreakerState::Open { until: now + self.cooldown },
        };
    }

    /// True while calls fail fast.
    pub fn is_open(&self) -> bool {
        matches!(*self.state.lock().unwrap_or_else(|e| e.into_inner()), BreakerState::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_half_opens_after_cooldown() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..2 {
            breaker.record_failure_at(t0);
        }
        assert!(breaker.allow_at(t0), "two failures keep it closed");
        breaker.record_failure_at(t0);
        assert!(!breaker.allow_at(t0 + Duration::from_secs(1)), "third failure opens it");
        assert!(breaker.allow_at(t0 + Duration::from_secs(11)), "one trial after the cooldown");
        assert!(!breaker.allow_at(t0 + Duration::from_secs(11)), "only one trial at a time");
        breaker.record_success();
        assert!(breaker.allow_at(t0 + Duration::from_secs(12)));
    }

    #[test]
    fn failed_trial_reopens_the_circuit() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(5));
        let t0 = Instant::now();
        breaker.record_failure_at(t0);
        assert!(breaker.allow_at(t0 + Duration::from_secs(6)));
        breaker.record_failure_at(t0 + Duration::from_secs(6));
        assert!(!breaker.allow_at(t0 + Duration::from_secs(7)));
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
}
