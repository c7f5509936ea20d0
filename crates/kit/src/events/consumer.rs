//! [`Consumer`]: one service's event handlers, registered in one place. Handlers are plain
//! async functions of (state, event); the consumer decodes the payload, applies each event id
//! once (a bounded memory of the ids applied: every consumer today keeps its state in memory,
//! so the memory lives exactly as long as that state), and retries a failing handler with a
//! back-off before giving the event up.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::events::{CloudEvent, EventData};
use tracing::Instrument;
use uuid::Uuid;

type HandlerFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type Handler = Arc<dyn Fn(&CloudEvent) -> Option<Result<HandlerFuture, String>> + Send + Sync>;

/// How often and how patiently a failing handler is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait after the first failure; each later one doubles it.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, first_backoff: Duration::from_millis(100) }
    }
}

/// What delivering one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The handler applied it.
    Applied,
    /// This id was applied before: nothing was done.
    Duplicate,
    /// No handler takes this type.
    Ignored,
    /// The payload does not read as its type: it can never be applied.
    Poison(String),
    /// The handler failed every try; the last error.
    Failed(String),
}

impl Delivery {
    fn label(&self) -> &'static str {
        match self {
            Delivery::Applied => "applied",
            Delivery::Duplicate => "duplicate",
            Delivery::Ignored => "ignored",
            Delivery::Poison(_) => "poison",
            Delivery::Failed(_) => "failed",
        }
    }
}

/// The ids a consumer applied last, at most `capacity` of them (the oldest forgotten first).
struct SeenIds {
    capacity: usize,
    order: VecDeque<Uuid>,
    ids: HashSet<Uuid>,
}

impl SeenIds {
    fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, id: Uuid) {
        if self.ids.insert(id) {
            self.order.push_back(id);
            while self.order.len() > self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.ids.remove(&oldest);
                }
            }
        }
    }
}

/// One service's handlers, by event type.
#[derive(Clone)]
pub struct Consumer {
    name: String,
    handlers: HashMap<&'static str, Handler>,
    seen: Arc<Mutex<SeenIds>>,
    retry: RetryPolicy,
}

impl Consumer {
    /// How many applied ids a consumer remembers: far more than a redelivery can lag behind.
    pub const REMEMBERED_IDS: usize = 100_000;

    /// A consumer named `name` (the service: it names the broker queue and the metrics).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            handlers: HashMap::new(),
            seen: Arc::new(Mutex::new(SeenIds {
                capacity: Self::REMEMBERED_IDS,
                order: VecDeque::new(),
                ids: HashSet::new(),
            })),
            retry: RetryPolicy::default(),
        }
    }

    /// Retries failing handlers per `policy` instead of the default (5 tries from 0.1 s).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Handles events of type `D` with `handler(state, event)`. A second handler for one type
    /// replaces the first.
    pub fn on<D, S, F, Fut>(mut self, state: S, handler: F) -> Self
    where
        D: EventData + Send + 'static,
        S: Clone + Send + Sync + 'static,
        F: Fn(S, CloudEvent<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let erased: Handler = Arc::new(move |event: &CloudEvent| {
            let decoded = event.decode::<D>()?;
            Some(match decoded {
                Ok(typed) => Ok(Box::pin(handler(state.clone(), typed)) as HandlerFuture),
                Err(e) => Err(e.to_string()),
            })
        });
        self.handlers.insert(D::TYPE, erased);
        self
    }

    /// Handles events of each of `types` as they travel, their payload left as JSON, with
    /// `handler(state, event)`: for a consumer that passes events on rather than reads them
    /// (`mercato events watch`). Replaces an earlier handler of the same type.
    pub fn on_raw<S, F, Fut>(mut self, types: &[&'static str], state: S, handler: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S, CloudEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        for event_type in types {
            let (state, handler) = (state.clone(), handler.clone());
            let erased: Handler = Arc::new(move |event: &CloudEvent| {
                Some(Ok(Box::pin(handler(state.clone(), event.clone())) as HandlerFuture))
            });
            self.handlers.insert(event_type, erased);
        }
        self
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event types it handles.
    pub fn types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> = self.handlers.keys().copied().collect();
        types.sort_unstable();
        types
    }

    /// Applies `event` once: skips an id applied before, decodes the payload, runs the
    /// handler, retrying it with a back-off, and remembers the id once it succeeded. Counts the
    /// outcome in `events_consumed_total{consumer, outcome}` and each retry in
    /// `events_handler_retries_total{consumer}`. The handler runs in a span continuing the
    /// producer's trace (`traceparent`).
    pub async fn deliver(&self, event: &CloudEvent) -> Delivery {
        let span = crate::telemetry::event_span(
            &self.name,
            &event.event_type,
            &event.id.to_string(),
            event.traceparent.as_deref(),
        );
        let delivery = self.apply(event).instrument(span).await;
        if let Delivery::Poison(why) | Delivery::Failed(why) = &delivery {
            tracing::error!(
                consumer = %self.name, event_id = %event.id, event_type = %event.event_type, error = %why,
                outcome = delivery.label(), "an event could not be applied"
            );
        }
        metrics::counter!("events_consumed_total", "consumer" => self.name.clone(), "outcome" => delivery.label())
            .increment(1);
        delivery
    }

    async fn apply(&self, event: &CloudEvent) -> Delivery {
        if self.seen().contains(&event.id) {
            return Delivery::Duplicate;
        }
        let Some(handler) = self.handlers.get(event.event_type.as_str()) else {
            return Delivery::Ignored;
        };
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            let run = match handler(event) {
                None => return Delivery::Ignored,
                Some(Err(why)) => return Delivery::Poison(why),
                Some(Ok(run)) => run,
            };
            match run.await {
                Ok(()) => {
                    self.seen().insert(event.id);
                    return Delivery::Applied;
                }
                Err(e) if attempt >= self.retry.attempts.max(1) => return Delivery::Failed(format!("{e:#}")),
                Err(e) => {
                    tracing::warn!(consumer = %self.name, event_id = %event.id, attempt, error = %e, "an event handler failed; retrying");
                    metrics::counter!("events_handler_retries_total", "consumer" => self.name.clone())
                        .increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, SeenIds> {
        // Every change is one insert or one eviction; a panic elsewhere leaves the set whole.
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::events::{UserDeleted, UserRoleChanged};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn deleted(user: u128) -> CloudEvent {
        let at = chrono::Utc::now();
        CloudEvent::new(
            "/mercato/test",
            at,
            None,
            UserDeleted { user_id: Uuid::from_u128(user), deleted_at: at },
        )
        .into_json()
        .expect("serialisable")
    }

    fn counting() -> (Consumer, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let consumer =
            Consumer::new("test").on::<UserDeleted, _, _, _>(calls.clone(), |calls, _| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                anyhow::Ok(())
            });
        (consumer, calls)
    }

    #[tokio::test]
    async fn a_raw_handler_gets_its_types_undecoded_once_each_and_no_other_type() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let consumer = Consumer::new("watch").on_raw(
            &[UserDeleted::TYPE],
            seen.clone(),
            |seen, event: CloudEvent| async move {
                seen.lock().expect("not poisoned").push(event.data);
                anyhow::Ok(())
            },
        );
        assert_eq!(consumer.types(), vec![UserDeleted::TYPE]);
        let mut odd = deleted(4);
        odd.data = serde_json::json!({"user_id": 42});
        assert_eq!(consumer.deliver(&odd).await, Delivery::Applied, "not decoded, so never poison");
        assert_eq!(consumer.deliver(&odd).await, Delivery::Duplicate);
        let at = chrono::Utc::now();
        let other = CloudEvent::new(
            "/mercato/test",
            at,
            None,
            UserRoleChanged {
                user_id: Uuid::nil(),
                previous_role: "admin".into(),
                role: "customer".into(),
                changed_at: at,
            },
        )
        .into_json()
        .expect("serialisable");
        assert_eq!(consumer.deliver(&other).await, Delivery::Ignored);
        assert_eq!(*seen.lock().expect("not poisoned"), vec![serde_json::json!({"user_id": 42})]);
    }

    #[tokio::test]
    async fn the_same_event_twice_is_applied_once() {
        let (consumer, calls) = counting();
        let event = deleted(1);
        assert_eq!(consumer.deliver(&event).await, Delivery::Applied);
        assert_eq!(consumer.deliver(&event).await, Delivery::Duplicate);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(consumer.deliver(&deleted(2)).await, Delivery::Applied, "another id is applied");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn types_without_a_handler_are_ignored_and_bad_payloads_are_poison() {
        let (consumer, calls) = counting();
        let at = chrono::Utc::now();
        let other = CloudEvent::new(
            "/mercato/test",
            at,
            None,
            UserRoleChanged {
                user_id: Uuid::nil(),
                previous_role: "admin".into(),
                role: "customer".into(),
                changed_at: at,
            },
        )
        .into_json()
        .expect("serialisable");
        assert_eq!(consumer.deliver(&other).await, Delivery::Ignored);
        let mut bad = deleted(3);
        bad.data = serde_json::json!({"user_id": 42});
        assert!(matches!(consumer.deliver(&bad).await, Delivery::Poison(_)));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(consumer.types(), vec![UserDeleted::TYPE]);
    }

    #[tokio::test]
    async fn a_failing_handler_is_retried_then_given_up_and_a_later_success_counts_once() {
        let tries = Arc::new(AtomicU32::new(0));
        let policy = RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(1) };
        let consumer = Consumer::new("flaky").with_retry(policy).on::<UserDeleted, _, _, _>(
            tries.clone(),
            |tries, _| async move {
                // Fails twice, then works.
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(anyhow::anyhow!("not yet"))
                } else {
                    anyhow::Ok(())
                }
            },
        );
        let event = deleted(4);
        assert_eq!(consumer.deliver(&event).await, Delivery::Applied);
        assert_eq!(tries.load(Ordering::SeqCst), 3, "two failures, then the success");

        let always =
            Consumer::new("broken").with_retry(policy).on::<UserDeleted, _, _, _>((), |(), _| async {
                Err::<(), _>(anyhow::anyhow!("the store is down"))
            });
        assert!(
            matches!(always.deliver(&event).await, Delivery::Failed(why) if why.contains("the store is down"))
        );
        assert!(matches!(always.deliver(&event).await, Delivery::Failed(_)), "a failed id is not remembered");
    }

    #[test]
    fn the_memory_of_ids_is_bounded_and_forgets_the_oldest() {
        let mut seen = SeenIds { capacity: 2, order: VecDeque::new(), ids: HashSet::new() };
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        seen.insert(a);
        seen.insert(b);
        seen.insert(b);
        seen.insert(c);
        assert!(!seen.contains(&a) && seen.contains(&b) && seen.contains(&c));
        assert_eq!(seen.order.len(), 2);
    }
}
