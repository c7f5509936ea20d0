//! The RabbitMQ transport against the real broker (`MERCATO_TEST_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`), each test on an exchange and queues of its own,
//! deleted afterwards: published events reach a consumer in order; a consumer that stops
//! before its ack gets the event again and applies it once; a poison message and an event whose
//! handler keeps failing end in the dead-letter queue.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing unwrap is a failing test

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contracts::events::{CloudEvent, UserDeleted};
use kit::events::{Broker, Consumer, Publisher, RetryPolicy, Transport};
use lapin::options::{BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn url() -> String {
    std::env::var("MERCATO_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// An exchange and a consumer name of this test's own; deletes them (and the dead-letter
/// exchange and queue) when dropped.
struct Names {
    exchange: String,
    queue: String,
}

impl Names {
    fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self { exchange: format!("test.events.{id}"), queue: format!("test-consumer-{id}") }
    }

    async fn channel(&self) -> (Connection, lapin::Channel) {
        let connection = Connection::connect(&url(), ConnectionProperties::default()).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        (connection, channel)
    }

    /// The messages in the dead-letter queue.
    async fn dead_letters(&self) -> Vec<Vec<u8>> {
        let (connection, channel) = self.channel().await;
        let mut found = Vec::new();
        while let Some(message) = channel
            .basic_get(format!("{}.dead", self.queue).into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            found.push(message.delivery.data);
        }
        connection.close(200, "done".into()).await.unwrap();
        found
    }

    async fn clean_up(&self) {
        let (connection, channel) = self.channel().await;
        for queue in [self.queue.clone(), format!("{}.dead", self.queue)] {
            let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        }
        for exchange in [self.exchange.clone(), format!("{}.dead", self.exchange)] {
            let _ = channel.exchange_delete(exchange.into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
}

fn deleted(n: u128) -> CloudEvent {
    let at = chrono::Utc::now();
    CloudEvent::new("/mercato/test", at, None, UserDeleted { user_id: Uuid::from_u128(n), deleted_at: at })
        .into_json()
        .unwrap()
}

/// A consumer noting the user ids of the `user.deleted` events it applies.
fn recording(name: &str) -> (Consumer, Arc<Mutex<Vec<Uuid>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = Consumer::new(name).on::<UserDeleted, _, _, _>(seen.clone(), |seen, event| async move {
        seen.lock().unwrap().push(event.data.user_id);
        anyhow::Ok(())
    });
    (consumer, seen)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("waited 10 s for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_the_consumer_in_order() {
    let names = Names::new();
    let broker = Broker::new(&url(), &names.exchange);
    let (consumer, seen) = recording(&names.queue);
    broker.declare(&names.queue, &consumer).await.unwrap();
    let events: Vec<CloudEvent> = (0..50).map(deleted).collect();
    broker.publisher().publish(&events).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), consumer, stop.clone()));
    wait_until("50 events", || seen.lock().unwrap().len() == 50).await;
    let expected: Vec<Uuid> = (0..50u128).map(Uuid::from_u128).collect();
    assert_eq!(*seen.lock().unwrap(), expected);
    stop.cancel();
    task.await.unwrap();
    assert!(names.dead_letters().await.is_empty());
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_stopped_before_its_ack_gets_the_event_again_and_applies_it_once() {
    let names = Names::new();
    let broker = Broker::new(&url(), &names.exchange);
    // The first consumer never finishes its handler: it stops holding the message.
    let started = Arc::new(tokio::sync::Notify::new());
    let stuck =
        Consumer::new(&names.queue).on::<UserDeleted, _, _, _>(started.clone(), |started, _| async move {
            started.notify_one();
            std::future::pending::<()>().await;
            anyhow::Ok(())
        });
    broker.declare(&names.queue, &stuck).await.unwrap();
    broker.publisher().publish(&[deleted(7)]).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), stuck, stop.clone()));
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the first consumer got it");
    stop.cancel();
    task.await.unwrap();

    let (consumer, seen) = recording(&names.queue);
    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), consumer, stop.clone()));
    wait_until("the redelivery", || seen.lock().unwrap().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*seen.lock().unwrap(), vec![Uuid::from_u128(7)], "applied once");
    stop.cancel();
    task.await.unwrap();
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_failing_events_end_in_the_dead_letter_queue_after_the_tries() {
    let names = Names::new();
    let broker = Broker::new(&url(), &names.exchange);
    let tries = Arc::new(AtomicU32::new(0));
    let failing = Consumer::new(&names.queue)
        .with_retry(RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(5) })
        .on::<UserDeleted, _, _, _>(tries.clone(), |tries, _| async move {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(anyhow::anyhow!("the store is down"))
        });
    broker.declare(&names.queue, &failing).await.unwrap();
    broker.publisher().publish(&[deleted(1)]).await.unwrap();
    // A message that is no CloudEvent at all, with a routing key the queue takes.
    let (connection, channel) = names.channel().await;
    channel
        .basic_publish(
            names.exchange.as_str().into(),
            "mercato.user.deleted.v1".into(),
            BasicPublishOptions::default(),
            b"{not json",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();

    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), failing, stop.clone()));
    let mut dead = Vec::new();
    for _ in 0..200 {
        dead.extend(names.dead_letters().await);
        if dead.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(dead.len(), 2, "both went to the dead-letter queue");
    assert_eq!(tries.load(Ordering::SeqCst), 3, "the failing one was tried three times");
    assert!(dead.iter().any(|body| body == b"{not json"));
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_of_a_consumer_gets_every_event() {
    // Two replicas of one service: each keeps its state in memory, so each needs every event.
    let names = Names::new();
    let transport = Transport::Broker(Broker::new(&url(), &names.exchange));
    let (first, first_seen) = recording("replicated");
    let (second, second_seen) = recording("replicated");
    let (first, second) = (transport.subscribe(first), transport.subscribe(second));
    let queues: Vec<String> =
        [&first, &second].iter().map(|s| s.queue().expect("a broker queue").to_owned()).collect();
    assert_ne!(queues[0], queues[1], "a queue per replica");
    let stop = CancellationToken::new();
    let tasks = [tokio::spawn(first.run(stop.clone())), tokio::spawn(second.run(stop.clone()))];
    // Each queue exists once its replica connected: publish until both have heard something,
    // then one last event that both must get.
    let publisher = transport.publisher();
    let mut n = 0;
    while first_seen.lock().unwrap().is_empty() || second_seen.lock().unwrap().is_empty() {
        assert!(n < 200, "the replicas never both heard an event");
        n += 1;
        publisher.publish(&[deleted(n)]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.publish(&[deleted(1_000)]).await.unwrap();
    let last = Uuid::from_u128(1_000);
    wait_until("the last event on both replicas", || {
        first_seen.lock().unwrap().contains(&last) && second_seen.lock().unwrap().contains(&last)
    })
    .await;
    stop.cancel();
    for task in tasks {
        task.await.unwrap();
    }
    let (connection, channel) = names.channel().await;
    for queue in queues {
        for queue in [queue.clone(), format!("{queue}.dead")] {
            let _ = channel.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
    names.clean_up().await;
}

/// The value of `metric` for `service` in the process's Prometheus text, if it has one.
fn metric_value(metric: &str, service: &str, more: &str) -> Option<f64> {
    let service_label = format!("service=\"{service}\"");
    kit::metrics::render().lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        (labels.contains(&service_label) && labels.contains(more)).then(|| value.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_raises_the_dead_letter_depth_and_the_queue_depth_falls_to_zero() {
    kit::metrics::handle();
    let names = Names::new();
    let broker = Broker::new(&url(), &names.exchange).with_depth_interval(Duration::from_millis(100));
    let (consumer, _) = recording(&names.queue);
    broker.declare(&names.queue, &consumer).await.unwrap();
    let (connection, channel) = names.channel().await;
    channel
        .basic_publish(
            names.exchange.as_str().into(),
            "mercato.user.deleted.v1".into(),
            BasicPublishOptions::default(),
            b"{not json",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), consumer, stop.clone()));
    wait_until("a dead-letter depth of 1", || {
        metric_value("events_dead_letter_depth", &names.queue, "") == Some(1.0)
    })
    .await;
    wait_until("an empty consumer queue", || {
        metric_value("events_consumer_queue_depth", &names.queue, "") == Some(0.0)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_is_counted_by_service_and_type() {
    kit::metrics::handle();
    let names = Names::new();
    let broker = Broker::new(&url(), &names.exchange);
    // The first consumer never finishes its handler: the broker redelivers to the next one.
    let started = Arc::new(tokio::sync::Notify::new());
    let stuck =
        Consumer::new(&names.queue).on::<UserDeleted, _, _, _>(started.clone(), |started, _| async move {
            started.notify_one();
            std::future::pending::<()>().await;
            anyhow::Ok(())
        });
    broker.declare(&names.queue, &stuck).await.unwrap();
    broker.publisher().publish(&[deleted(9)]).await.unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), stuck, stop.clone()));
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("the first consumer got it");
    assert_eq!(metric_value("events_redelivered_total", &names.queue, ""), None, "a first delivery");
    stop.cancel();
    task.await.unwrap();

    let (consumer, seen) = recording(&names.queue);
    let stop = CancellationToken::new();
    let task = tokio::spawn(broker.clone().consume(names.queue.clone(), consumer, stop.clone()));
    wait_until("the redelivery", || seen.lock().unwrap().len() == 1).await;
    assert_eq!(
        metric_value("events_redelivered_total", &names.queue, "type=\"mercato.user.deleted.v1\""),
        Some(1.0)
    );
    stop.cancel();
    task.await.unwrap();
    names.clean_up().await;
}
