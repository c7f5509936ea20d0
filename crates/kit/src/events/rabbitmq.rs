//! RabbitMQ (lapin): the [`Publisher`] the relays use when `events.url` names a broker, and
//! each service's durable queue feeding its [`Consumer`].
//!
//! - Events go to the durable topic exchange (`mercato.events`), routing key = type, as
//!   persistent messages, and a batch counts as published only once the broker confirmed every
//!   message (publisher confirms); otherwise the relay marks nothing and tries again.
//! - Each replica of a consuming service has a durable queue of its own
//!   (`<consumer>.<replica>`, see `Subscription`), bound to the types it handles: today's
//!   consumers keep their state in memory (a deny-list, a cache), so every replica must see
//!   every event; one queue shared by the replicas would hand each event to one of them. A
//!   queue unused for 30 minutes (its replica gone) is deleted by the broker. With a
//!   dead-letter exchange: a message is acknowledged only after its handler finished (or the id
//!   was applied before); a payload that can never be read, or a handler that failed every try,
//!   is rejected into `<queue>.dead`. A consumer that dies before its ack gets the message
//!   again (the broker redelivers), and applies it once.
//! - A lost connection is opened again with a back-off (0.5 s, doubling up to 10 s), by the
//!   publisher on its next batch and by the consumer at once.
//! - Metrics of a consumer (label `service`, the consumer's name): `events_redelivered_total`
//!   (also by `type`) counts messages the broker handed over again (a consumer stopped before its
//!   ack); every 15 s a passive declare of its queue and dead-letter queue sets
//!   `events_consumer_queue_depth` (messages waiting: the consumer's lag) and
//!   `events_dead_letter_depth`.

use std::time::Duration;

use async_trait::async_trait;
use contracts::events::CloudEvent;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::consumer::{Consumer, Delivery};
use super::relay::{PublishError, Publisher};

/// How often a consumer reads the depth of its queue and of its dead-letter queue.
const DEPTH_INTERVAL: Duration = Duration::from_secs(15);

/// A queue nobody consumed from for this long is deleted by the broker: the queue of a replica
/// that is gone for good (a new process takes a new queue), never one whose replica is
/// reconnecting.
const QUEUE_EXPIRES_MS: i64 = 30 * 60 * 1000;
/// The same for a dead-letter queue: a week for someone to look at what it holds.
const DEAD_QUEUE_EXPIRES_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Where a consumer's rejected messages go: `<exchange>.dead`, a fanout exchange, into
/// `<queue>.dead`.
fn dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dead")
}

/// How a service meets the broker: its URL and the exchange.
#[derive(Debug, Clone)]
pub struct Broker {
    url: String,
    exchange: String,
    depth_interval: Duration,
}

impl Broker {
    /// The broker at `url` (`amqp://user:password@host:5672/%2f`), on `exchange`
    /// (`contracts::events::EXCHANGE` in the shop; tests use names of their own).
    pub fn new(url: &str, exchange: &str) -> Self {
        Self { url: url.to_owned(), exchange: exchange.to_owned(), depth_interval: DEPTH_INTERVAL }
    }

    /// Reads the consumers' queue depths every `interval` instead of every 15 s (tests).
    pub fn with_depth_interval(mut self, interval: Duration) -> Self {
        self.depth_interval = interval;
        self
    }

    async fn connect(&self) -> Result<(Connection, Channel), lapin::Error> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        Ok((connection, channel))
    }

    /// The publisher of the relays.
    pub fn publisher(&self) -> RabbitPublisher {
        RabbitPublisher { broker: self.clone(), open: Mutex::new(None) }
    }

    /// Declares `queue` for `consumer` (bound to its types) and its dead-letter queue now, so
    /// that events published before it consumes wait for it there.
    pub async fn declare(&self, queue: &str, consumer: &Consumer) -> anyhow::Result<()> {
        let (connection, channel) = self.connect().await?;
        self.declare_queue(&channel, queue, &consumer.types()).await?;
        let _ = connection.close(200, "declared".into()).await;
        Ok(())
    }

    /// Runs `consumer` on the durable `queue` until `shutdown`, connecting again with a back-off
    /// whenever the connection is lost.
    pub async fn consume(self, queue: String, consumer: Consumer, shutdown: CancellationToken) {
        let mut wait = Duration::from_millis(500);
        loop {
            // Not raced against `shutdown`: it watches it itself, and closes its connection so
            // the broker hands what it held to the next consumer at once.
            match self.consume_once(&queue, &consumer, &shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(consumer = consumer.name(), error = %e, wait_ms = wait.as_millis() as u64, "the broker connection was lost; connecting again");
                    metrics::counter!("events_broker_reconnects_total", "consumer" => consumer.name().to_owned()).increment(1);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    /// One connection's worth of consuming: declares the queue and its bindings, then applies
    /// deliveries until the connection fails (`Err`) or `shutdown` (`Ok`).
    async fn consume_once(
        &self,
        queue: &str,
        consumer: &Consumer,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let (connection, channel) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            connected = self.connect() => connected?,
        };
        self.declare_queue(&channel, queue, &consumer.types()).await?;
        // A few in flight at most: they are applied one at a time anyway.
        channel.basic_qos(16, BasicQosOptions::default()).await?;
        let mut deliveries = channel
            .basic_consume(
                queue.into(),
                format!("{queue}-{}", uuid::Uuid::new_v4().simple()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(consumer = %queue, exchange = %self.exchange, "consuming events from the broker");
        // Passive declares on a channel of their own: one that failed closes only that channel.
        let depth_channel = connection.create_channel().await?;
        let mut depth_tick = tokio::time::interval(self.depth_interval);
        depth_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = depth_tick.tick() => {
                    record_depths(&depth_channel, queue, consumer.name()).await;
                    continue;
                }
                next = deliveries.next() => next,
            };
            let Some(delivery) = next else {
                anyhow::bail!("the broker ended the consumer");
            };
            let delivery = delivery?;
            if delivery.redelivered {
                let event_type =
                    delivery.properties.kind().as_ref().map_or("unknown", |kind| kind.as_str()).to_owned();
                metrics::counter!("events_redelivered_total", "service" => consumer.name().to_owned(), "type" => event_type)
                    .increment(1);
            }
            let applied = match serde_json::from_slice::<CloudEvent>(&delivery.data) {
                // Stopping mid-handler leaves the message unacknowledged: the broker gives it to
                // the next consumer of the queue.
                Ok(event) => tokio::select! {
                    () = shutdown.cancelled() => break,
                    applied = consumer.deliver(&event) => applied,
                },
                Err(e) => Delivery::Poison(format!("not a CloudEvent: {e}")),
            };
            match applied {
                Delivery::Applied | Delivery::Duplicate | Delivery::Ignored => {
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Delivery::Poison(why) | Delivery::Failed(why) => {
                    tracing::error!(consumer = %queue, error = %why, "an event goes to the dead-letter queue");
                    metrics::counter!("events_dead_lettered_total", "consumer" => consumer.name().to_owned())
                        .increment(1);
                    delivery.reject(BasicRejectOptions { requeue: false }).await?;
                }
            }
        }
        let _ = connection.close(200, "shutting down".into()).await;
        Ok(())
    }

    /// Declares the consumer's durable queue, bound to `types`, with its dead-letter exchange
    /// and queue.
    async fn declare_queue(
        &self,
        channel: &Channel,
        queue: &str,
        types: &[&'static str],
    ) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        let dead_exchange = dead_letter_exchange(&self.exchange);
        let dead_queue = format!("{queue}.dead");
        channel
            .exchange_declare(
                dead_exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        let mut dead_arguments = FieldTable::default();
        dead_arguments.insert("x-expires".into(), AMQPValue::LongLongInt(DEAD_QUEUE_EXPIRES_MS));
        channel.queue_declare(dead_queue.as_str().into(), durable, dead_arguments).await?;
        channel
            .queue_bind(
                dead_queue.as_str().into(),
                dead_exchange.as_str().into(),
                queue.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut arguments = FieldTable::default();
        arguments
            .insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dead_exchange.as_str().into()));
        arguments.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(queue.into()));
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(QUEUE_EXPIRES_MS));
        channel.queue_declare(queue.into(), durable, arguments).await?;
        for event_type in types {
            channel
                .queue_bind(
                    queue.into(),
                    self.exchange.as_str().into(),
                    (*event_type).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Sets `events_consumer_queue_depth` and `events_dead_letter_depth` of `service` from passive
/// declares of `queue` and `<queue>.dead` (which exist: the consumer declared them). A failed
/// read leaves the gauges as they were; the consumer notices a lost connection itself.
async fn record_depths(channel: &Channel, queue: &str, service: &str) {
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let dead_queue = format!("{queue}.dead");
    for (name, gauge) in
        [(queue, "events_consumer_queue_depth"), (dead_queue.as_str(), "events_dead_letter_depth")]
    {
        match channel.queue_declare(name.into(), passive, FieldTable::default()).await {
            Ok(declared) => {
                metrics::gauge!(gauge, "service" => service.to_owned())
                    .set(f64::from(declared.message_count()));
            }
            Err(e) => tracing::debug!(queue = %name, error = %e, "could not read the queue's depth"),
        }
    }
}

/// Publishes batches to the broker with confirms, over a connection opened on first use and
/// again after it failed.
pub struct RabbitPublisher {
    broker: Broker,
    open: Mutex<Option<(Connection, Channel)>>,
}

#[async_trait]
impl Publisher for RabbitPublisher {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PublishError> {
        let mut open = self.open.lock().await;
        if open.is_none() {
            let (connection, channel) = self.broker.connect().await.map_err(broker_error)?;
            channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(broker_error)?;
            *open = Some((connection, channel));
        }
        let Some((_, channel)) = open.as_ref() else {
            return Err(PublishError("no broker connection".into()));
        };
        let published = publish_confirmed(channel, &self.broker.exchange, events).await;
        if published.is_err() {
            // The next batch opens a new connection; this one is of no more use.
            *open = None;
        }
        published
    }
}

async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    events: &[CloudEvent],
) -> Result<(), PublishError> {
    let mut confirms = Vec::with_capacity(events.len());
    for event in events {
        let payload = serde_json::to_vec(event).map_err(|e| PublishError(e.to_string()))?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/cloudevents+json".into())
            .with_message_id(event.id.to_string().into())
            .with_type(event.event_type.as_str().into());
        let confirm = channel
            .basic_publish(
                exchange.into(),
                event.event_type.as_str().into(),
                BasicPublishOptions::default(),
                &payload,
                properties,
            )
            .await
            .map_err(broker_error)?;
        confirms.push(confirm);
    }
    for confirm in confirms {
        let confirmation = confirm.await.map_err(broker_error)?;
        if !confirmation.is_ack() {
            return Err(PublishError("the broker refused an event (nack)".into()));
        }
    }
    Ok(())
}

fn broker_error(error: lapin::Error) -> PublishError {
    PublishError(format!("RabbitMQ: {error}"))
}
