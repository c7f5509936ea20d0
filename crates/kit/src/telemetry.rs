//! Logs, traces and request ids: JSON logs (pretty on a terminal), a request id and trace id on
//! every request span, W3C `traceparent` accepted and propagated, OTLP export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The header carrying the request id, set by the gateway when absent and passed on every hop.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The log filter when neither `MERCATO_LOG` nor `RUST_LOG` is set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,tower=warn";

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// `MERCATO_LOG_FORMAT=json|pretty`; otherwise pretty on a terminal, JSON elsewhere.
    pub fn from_env() -> Self {
        match std::env::var("MERCATO_LOG_FORMAT").as_deref() {
            Ok("json") => Self::Json,
            Ok("pretty") => Self::Pretty,
            _ if std::io::stdout().is_terminal() => Self::Pretty,
            _ => Self::Json,
        }
    }
}

/// Installs the process-wide subscriber once; later calls do nothing. The log filter comes
/// from `MERCATO_LOG` (or `RUST_LOG`), e.g. `info,users=debug`.
pub fn init(service_name: &str) {
    init_with(service_name, LogFormat::from_env());
}

/// As [`init`] with an explicit format.
pub fn init_with(service_name: &str, format: LogFormat) {
    let endpoint = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        .iter()
        .any(|key| std::env::var(key).is_ok_and(|v| !v.is_empty()))
        .then_some(OtlpEndpoint::FromEnvironment);
    init_with_exporter(service_name, format, endpoint);
}

/// Where spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpEndpoint {
    /// As the `OTEL_EXPORTER_OTLP_*` variables say.
    FromEnvironment,
    /// An OTLP/HTTP collector's base URL, e.g. `http://collector:4318`.
    Url(String),
}

/// As [`init`], with the log format and OTLP endpoint given rather than read from the environment.
pub fn init_with_exporter(service_name: &str, format: LogFormat, endpoint: Option<OtlpEndpoint>) {
    let provider = PROVIDER.get_or_init(|| build_provider(service_name, endpoint));
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = std::env::var("MERCATO_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("mercato"));
    // A test binary or the `mercato` process may call this more than once.
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
}

/// Flushes pending spans to the OTLP collector, if any. Call before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

fn build_provider(service_name: &str, endpoint: Option<OtlpEndpoint>) -> SdkTracerProvider {
    use opentelemetry_otlp::WithExportConfig;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_owned()).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let exporter = match endpoint {
        // Spans still get trace ids (for logs and propagation); nothing is exported.
        None => return builder.build(),
        Some(OtlpEndpoint::FromEnvironment) => {
            opentelemetry_otlp::SpanExporter::builder().with_http().build()
        }
        Some(OtlpEndpoint::Url(base)) => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')))
            .build(),
    };
    match exporter {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(err) => {
            eprintln!("OTLP trace export disabled: {err}");
            builder.build()
        }
    }
}

/// The request id of the request being served by the current task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Adds `x-request-id` and `traceparent` for the current request and span to outgoing headers.
pub fn inject_context(headers: &mut HeaderMap) {
    if let Some(id) = current_request_id().and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert(REQUEST_ID.clone(), id);
    }
    let cx = Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut opentelemetry_http::HeaderInjector(headers));
}

/// The W3C `traceparent` of the current span, if it belongs to a trace: what an event records
/// so that its consumers continue the request's trace.
pub fn current_traceparent() -> Option<String> {
    let mut headers = HeaderMap::new();
    inject_context(&mut headers);
    headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A span for applying one event, continuing the trace of `traceparent` (the producer's
/// request) when there is one.
pub fn event_span(consumer: &str, event_type: &str, event_id: &str, traceparent: Option<&str>) -> Span {
    let span = tracing::info_span!("event", consumer, event_type, event_id, trace_id = tracing::field::Empty);
    if let Some(value) = traceparent.and_then(|v| HeaderValue::from_str(v).ok()) {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", value);
        let parent = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(&headers));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let trace_id = span.context().span().span_context().trace_id().to_string();
    span.record("trace_id", trace_id.as_str());
    span
}

/// The trace id of the current span, as 32 hex digits.
pub fn current_trace_id() -> String {
    Span::current().context().span().span_context().trace_id().to_string()
}

/// A request id from the client is kept when it is short, printable ASCII; otherwise a new one.
pub fn request_id_from(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
}

/// Middleware: one span per request carrying service, method, route, request id and trace id
/// (continuing the caller's `traceparent`); records metrics; echoes `x-request-id`.
pub async fn trace_request(service: &'static str, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id_from(request.headers());
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or(crate::metrics::UNMATCHED_ROUTE, MatchedPath::as_str);
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        service,
        method = %method,
        route = %route,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    let parent =
        TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(request.headers()));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id().to_string();
    span.record("trace_id", trace_id.as_str());

    let mut response =
        CURRENT_REQUEST_ID.scope(request_id.clone(), next.run(request).instrument(span.clone())).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "served");
    });
    crate::metrics::record_request(service, method.as_str(), route, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_id_is_kept_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(&REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id_from(&h), "abc-123");
    }

    #[test]
    fn oversized_or_empty_request_id_is_replaced() {
        let mut h = HeaderMap::new();
        h.insert(&REQUEST_ID, HeaderValue::from_str(&"x".repeat(500)).unwrap());
        assert_eq!(request_id_from(&h).len(), 32);
        assert_eq!(request_id_from(&HeaderMap::new()).len(), 32);
    }
}
