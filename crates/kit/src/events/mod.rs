//! Events: the transactional outbox each producing service writes in the same database
//! transaction as its change ([`Outbox`]), the relay that publishes its rows in order through a
//! [`Publisher`] and prunes them once sent ([`Relay`]), the in-process bus of the embedded shop
//! ([`Bus`]), and consumers that apply each event id once and retry a failing handler with a
//! back-off ([`Consumer`]).
//!
//! Delivery is at least once: an event is published if and only if its change committed, may
//! be published twice (a relay that stopped between publishing and marking), and each consumer
//! applies an id once.

mod bus;
mod consumer;
mod outbox;
mod rabbitmq;
mod relay;

use std::sync::Arc;

use contracts::events::{EventData, UserDeleted, UserRoleChanged};

use crate::auth::Revocations;

pub use bus::{Bus, Subscription};
pub use consumer::{Consumer, Delivery, RetryPolicy};
pub use outbox::{Backlog, Outbox, OutboxMigration, PreparedEvent, outbox_backlog, recorded_since};
pub use rabbitmq::{Broker, RabbitPublisher};
pub use relay::{PublishError, Publisher, Relay, RelayError};

/// The outbox's rows, for test support (`kit::testing::outbox_events`).
#[cfg(feature = "testing")]
pub(crate) fn outbox_rows() -> sea_orm::Select<outbox::row::Entity> {
    use sea_orm::EntityTrait;
    outbox::row::Entity::find()
}

/// The outbox's columns, for test support.
#[cfg(feature = "testing")]
pub(crate) use outbox::row::Column as OutboxColumn;

/// Where a service's events go and come from: the in-process bus (the embedded shop, or a
/// service alone), or RabbitMQ when `events.url` names a broker.
#[derive(Debug, Clone)]
pub enum Transport {
    InProcess(Bus),
    Broker(Broker),
}

impl Transport {
    /// RabbitMQ at `config.url` (on [`contracts::events::EXCHANGE`]) when set, else `bus`.
    pub fn from_config(config: &crate::config::EventsConfig, bus: Bus) -> Self {
        Self::from_url(config.url.as_deref(), bus)
    }

    /// RabbitMQ at `url` when there is one, else `bus`.
    pub fn from_url(url: Option<&str>, bus: Bus) -> Self {
        match url {
            Some(url) => Transport::Broker(Broker::new(url, contracts::events::EXCHANGE)),
            None => Transport::InProcess(bus),
        }
    }

    /// What the relay publishes through.
    pub fn publisher(&self) -> Arc<dyn Publisher> {
        match self {
            Transport::InProcess(bus) => Arc::new(bus.clone()),
            Transport::Broker(broker) => Arc::new(broker.publisher()),
        }
    }

    /// `consumer`'s subscription: on the bus at once; on the broker its queue is declared
    /// when it first connects (`Subscription::run`), and durable from then on.
    pub fn subscribe(&self, consumer: Consumer) -> Subscription {
        match self {
            Transport::InProcess(bus) => bus.subscribe(consumer),
            Transport::Broker(broker) => Subscription::broker(broker.clone(), consumer),
        }
    }
}

/// Adds the token-revocation handlers to `consumer`: `user.deleted` refuses every token of the
/// user, `user.role_changed` every token issued before the change or carrying another role
/// ([`Revocations::apply`]). Orders, products and the gateway register it, so a deleted user's
/// or demoted admin's token is refused there within the relay's interval, not when it expires.
pub fn with_token_revocation(consumer: Consumer, revocations: Arc<Revocations>) -> Consumer {
    consumer.on_raw(
        &[UserDeleted::TYPE, UserRoleChanged::TYPE],
        revocations,
        |revocations, event| async move { revocations.apply(&event).map(|_| ()).map_err(anyhow::Error::msg) },
    )
}
