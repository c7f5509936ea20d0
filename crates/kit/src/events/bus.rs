//! The in-process bus: the embedded shop's broker. One [`Bus`] is shared by every service of
//! `mercato up`; each relay publishes into it and each service's [`Consumer`] takes the types
//! it handles, in the order they were published.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use contracts::events::CloudEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::consumer::Consumer;
use super::relay::{PublishError, Publisher};

/// Events a subscription holds before publishing waits for its consumer (back-pressure
/// reaches the relay, whose rows stay unsent meanwhile).
const SUBSCRIPTION_BUFFER: usize = 4096;

/// A subscriber as the bus sees it: the types it takes and where they go.
struct Subscriber {
    consumer: String,
    types: Vec<&'static str>,
    sender: mpsc::Sender<Arc<CloudEvent>>,
}

/// The in-process bus. Cheap to clone; clones are the same bus.
#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Arc<RwLock<Vec<Subscriber>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subscribers = self.subscribers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_struct("Bus").field("subscribers", &subscribers.len()).finish()
    }
}

impl Bus {
    /// A bus with no subscriber yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes `consumer` to the types it handles, from now on: events published from now
    /// are buffered for it until [`Subscription::run`] takes them (a service subscribes when it
    /// is built and consumes once it runs, so nothing published in between is missed).
    pub fn subscribe(&self, consumer: Consumer) -> Subscription {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let subscriber = Subscriber { consumer: consumer.name().to_owned(), types: consumer.types(), sender };
        self.subscribers.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(subscriber);
        Subscription { consumer, source: Source::Bus(receiver), backfill: None }
    }
}

#[async_trait]
impl Publisher for Bus {
    /// Hands each event to every subscriber of its type, in order; waits while a subscriber's
    /// buffer is full. A subscriber whose consumer has gone (its service stopped) is dropped.
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PublishError> {
        for event in events {
            let targets: Vec<(String, mpsc::Sender<Arc<CloudEvent>>)> = self
                .subscribers
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .filter(|s| s.types.iter().any(|t| *t == event.event_type))
                .map(|s| (s.consumer.clone(), s.sender.clone()))
                .collect();
            let event = Arc::new(event.clone());
            for (consumer, sender) in targets {
                if sender.send(event.clone()).await.is_err() {
                    tracing::debug!(consumer = %consumer, "a consumer of the in-process bus has stopped; unsubscribed");
                    self.subscribers
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .retain(|s| !s.sender.is_closed());
                }
            }
        }
        Ok(())
    }
}

/// A consumer's place on the bus or the broker: run it to apply what arrives.
pub struct Subscription {
    consumer: Consumer,
    source: Source,
    /// Reads the revocations published before this replica started (see
    /// [`Subscription::with_revocation_backfill`]).
    backfill: Option<std::sync::Arc<crate::auth::TokenVerifier>>,
}

enum Source {
    Bus(mpsc::Receiver<Arc<CloudEvent>>),
    /// The broker and this replica's queue.
    Broker(super::rabbitmq::Broker, String),
}

impl Subscription {
    /// `consumer` on a durable queue of this replica's own at `broker`:
    /// `<consumer>.<random id>` (see `kit::events::rabbitmq` for why each replica has one).
    pub(crate) fn broker(broker: super::rabbitmq::Broker, consumer: Consumer) -> Self {
        let queue = format!("{}.{}", consumer.name(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
        Self { consumer, source: Source::Broker(broker, queue), backfill: None }
    }

    /// When it runs, also reads the token revocations of the last hour from the users service
    /// into `verifier`'s deny-list ([`TokenVerifier::backfill_revocations`]): the events
    /// published before this replica subscribed, which no queue holds for it.
    ///
    /// [`TokenVerifier::backfill_revocations`]: crate::auth::TokenVerifier::backfill_revocations
    pub fn with_revocation_backfill(mut self, verifier: std::sync::Arc<crate::auth::TokenVerifier>) -> Self {
        self.backfill = Some(verifier);
        self
    }

    /// The broker queue this subscription consumes from; `None` on the in-process bus.
    pub fn queue(&self) -> Option<&str> {
        match &self.source {
            Source::Bus(_) => None,
            Source::Broker(_, queue) => Some(queue),
        }
    }

    /// On the broker, declares this replica's queue now (waiting at most 2 s), so that every
    /// event published from here on reaches it even before [`Self::run`] consumes: a service
    /// calls it while it starts, before it is ready. A broker that cannot be reached now is no
    /// error (the service must start without it): `run` declares the queue once it connects,
    /// and events published before then miss this replica. On the bus there is nothing to do.
    pub async fn declare(&self) {
        let Source::Broker(broker, queue) = &self.source else { return };
        let declared =
            tokio::time::timeout(std::time::Duration::from_secs(2), broker.declare(queue, &self.consumer))
                .await;
        match declared {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(consumer = %queue, error = %e, "cannot declare the event queue yet; it will be when the broker answers");
            }
            Err(_) => {
                tracing::warn!(consumer = %queue, "the broker did not answer within 2 s; the event queue will be declared when it does");
            }
        }
    }

    /// Applies events as they arrive, one at a time in their order, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Some(verifier) = self.backfill {
            let shutdown = shutdown.clone();
            tokio::spawn(async move { verifier.backfill_revocations(shutdown).await });
        }
        let mut receiver = match self.source {
            Source::Bus(receiver) => receiver,
            Source::Broker(broker, queue) => return broker.consume(queue, self.consumer, shutdown).await,
        };
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                event = receiver.recv() => event,
            };
            let Some(event) = event else { break };
            self.consumer.deliver(&event).await;
        }
    }
}
