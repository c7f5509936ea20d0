//! The events mercato's services publish: the CloudEvents 1.0 envelope in JSON structured mode
//! (with the W3C `traceparent` extension) and one typed payload per event type.
//!
//! Types are `mercato.<entity>.<what>.v1`; on RabbitMQ the routing key is the type, on the
//! topic exchange [`EXCHANGE`]. Delivery is at least once and `id` is unique per event, so a
//! consumer that remembers ids applies each event once.
//!
//! Payloads tolerate unknown fields (a producer may add one without breaking a consumer); a
//! change that removes or retypes a field is a new type (`….v2`).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// The CloudEvents version every mercato event declares.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of every event's `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The RabbitMQ topic exchange events are published on (routing key = the event's type).
pub const EXCHANGE: &str = "mercato.events";

/// One event in CloudEvents 1.0 JSON structured mode. `D` is the payload: a typed one
/// ([`EventData`]) where the type is known, `serde_json::Value` in transit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent<D = serde_json::Value> {
    /// Always [`SPEC_VERSION`].
    pub specversion: String,
    /// Unique per event; a consumer remembers it to apply the event once.
    pub id: Uuid,
    /// The producing service, as a URI reference: `/mercato/users`.
    pub source: String,
    /// `mercato.<entity>.<what>.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the change happened (the producer's clock).
    pub time: DateTime<Utc>,
    /// The entity the event is about (its id), so consumers can order per entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Always [`DATA_CONTENT_TYPE`].
    pub datacontenttype: String,
    /// The W3C trace context of the request that made the change, so one trace follows it
    /// into its consumers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: D,
}

/// A payload type: its CloudEvents `type` and the entity it is about.
pub trait EventData: Serialize + DeserializeOwned {
    /// The event's `type`, e.g. `mercato.user.deleted.v1`.
    const TYPE: &'static str;
    /// The `subject`: the id of the entity the event is about.
    fn subject(&self) -> String;
}

impl<D: EventData> CloudEvent<D> {
    /// A new event about `data`, from `source` (`/mercato/<service>`), at `time`, with a fresh
    /// id (UUIDv7, so ids sort by creation).
    pub fn new(source: &str, time: DateTime<Utc>, traceparent: Option<String>, data: D) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: Uuid::now_v7(),
            source: source.to_owned(),
            event_type: D::TYPE.to_owned(),
            time,
            subject: Some(data.subject()),
            datacontenttype: DATA_CONTENT_TYPE.to_owned(),
            traceparent,
            data,
        }
    }

    /// The same event with its payload as JSON, as it travels.
    pub fn into_json(self) -> Result<CloudEvent, serde_json::Error> {
        let data = serde_json::to_value(&self.data)?;
        Ok(self.with_data(data))
    }
}

impl<D> CloudEvent<D> {
    fn with_data<E>(self, data: E) -> CloudEvent<E> {
        CloudEvent {
            specversion: self.specversion,
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            time: self.time,
            subject: self.subject,
            datacontenttype: self.datacontenttype,
            traceparent: self.traceparent,
            data,
        }
    }
}

impl CloudEvent {
    /// The typed payload, when this event is of `D`'s type: `None` for another type, `Err`
    /// for a payload that does not read as `D` (a poison message).
    pub fn decode<D: EventData>(&self) -> Option<Result<CloudEvent<D>, serde_json::Error>> {
        if self.event_type != D::TYPE {
            return None;
        }
        Some(D::deserialize(&self.data).map(|data| self.clone().with_data(data)))
    }
}

/// Every event type mercato publishes, for consumers that bind to all and for the AsyncAPI
/// document.
pub const ALL_TYPES: [&str; 10] = [
    UserRegistered::TYPE,
    UserDeleted::TYPE,
    UserRoleChanged::TYPE,
    ProductCreated::TYPE,
    ProductUpdated::TYPE,
    ProductDeleted::TYPE,
    ProductStockLow::TYPE,
    OrderPlaced::TYPE,
    OrderCancelled::TYPE,
    OrderStatusChanged::TYPE,
];

/// `mercato.user.registered.v1`: an account was created (by sign-up or by an admin chore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    /// `customer` or `admin`.
    pub role: String,
    pub registered_at: DateTime<Utc>,
}

impl EventData for UserRegistered {
    const TYPE: &'static str = "mercato.user.registered.v1";
    fn subject(&self) -> String {
        self.user_id.to_string()
    }
}

/// `mercato.user.deleted.v1`: an account was (soft-)deleted. Every access token of the user is
/// refused from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserDeleted {
    pub user_id: Uuid,
    pub deleted_at: DateTime<Utc>,
}

impl EventData for UserDeleted {
    const TYPE: &'static str = "mercato.user.deleted.v1";
    fn subject(&self) -> String {
        self.user_id.to_string()
    }
}

/// `mercato.user.role_changed.v1`: an account's role changed. Access tokens issued before
/// `changed_at`, and any token carrying another role than `role`, are refused from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRoleChanged {
    pub user_id: Uuid,
    /// The role before: `customer` or `admin`.
    pub previous_role: String,
    /// The role now: `customer` or `admin`.
    pub role: String,
    pub changed_at: DateTime<Utc>,
}

impl EventData for UserRoleChanged {
    const TYPE: &'static str = "mercato.user.role_changed.v1";
    fn subject(&self) -> String {
        self.user_id.to_string()
    }
}

/// A product as the catalogue events carry it: what identifies, prices and stocks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductSnapshot {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    /// The category's slug.
    pub category: String,
    pub brand: Option<String>,
    pub price: Money,
    /// Units available now.
    pub stock: i64,
}

/// `mercato.product.created.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductCreated {
    pub product: ProductSnapshot,
    pub created_at: DateTime<Utc>,
}

impl EventData for ProductCreated {
    const TYPE: &'static str = "mercato.product.created.v1";
    fn subject(&self) -> String {
        self.product.product_id.to_string()
    }
}

/// `mercato.product.updated.v1`: any change an admin made (fields, price, stock, images); the
/// product as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductUpdated {
    pub product: ProductSnapshot,
    pub updated_at: DateTime<Utc>,
}

impl EventData for ProductUpdated {
    const TYPE: &'static str = "mercato.product.updated.v1";
    fn subject(&self) -> String {
        self.product.product_id.to_string()
    }
}

/// `mercato.product.deleted.v1`: a product was (soft-)deleted and is no longer for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductDeleted {
    pub product_id: Uuid,
    pub sku: String,
    pub deleted_at: DateTime<Utc>,
}

impl EventData for ProductDeleted {
    const TYPE: &'static str = "mercato.product.deleted.v1";
    fn subject(&self) -> String {
        self.product_id.to_string()
    }
}

/// `mercato.product.stock_low.v1`: a product's available stock fell to or below the low-stock
/// threshold (once per crossing: it is sent again only after stock rose above it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductStockLow {
    pub product_id: Uuid,
    pub sku: String,
    /// Units available now.
    pub stock: i64,
    /// The configured threshold that was crossed.
    pub threshold: i64,
    pub at: DateTime<Utc>,
}

impl EventData for ProductStockLow {
    const TYPE: &'static str = "mercato.product.stock_low.v1";
    fn subject(&self) -> String {
        self.product_id.to_string()
    }
}

/// One line of an order as its events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
}

/// `mercato.order.placed.v1`: an order was confirmed (its stock is held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<OrderLine>,
    pub total: Money,
    pub placed_at: DateTime<Utc>,
}

impl EventData for OrderPlaced {
    const TYPE: &'static str = "mercato.order.placed.v1";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// `mercato.order.cancelled.v1`: an order was cancelled (by its buyer, an admin, or a checkout
/// that could not finish); its stock goes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub user_id: Uuid,
    /// Why, when known (e.g. `insufficient stock`).
    pub reason: Option<String>,
    pub items: Vec<OrderLine>,
    pub cancelled_at: DateTime<Utc>,
}

impl EventData for OrderCancelled {
    const TYPE: &'static str = "mercato.order.cancelled.v1";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

/// `mercato.order.status_changed.v1`: a confirmed order moved on (paid, shipped, delivered).
/// Confirmation and cancellation have their own events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderStatusChanged {
    pub order_id: Uuid,
    pub user_id: Uuid,
    /// `confirmed`, `paid` or `shipped`.
    pub from: String,
    /// `paid`, `shipped` or `delivered`.
    pub to: String,
    pub changed_at: DateTime<Utc>,
}

impl EventData for OrderStatusChanged {
    const TYPE: &'static str = "mercato.order.status_changed.v1";
    fn subject(&self) -> String {
        self.order_id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_event_travels_as_json_and_decodes_only_as_its_type() {
        let at: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().expect("a time");
        let user_id = Uuid::from_u128(7);
        let event = CloudEvent::new("/mercato/users", at, None, UserDeleted { user_id, deleted_at: at });
        assert_eq!(event.subject.as_deref(), Some(user_id.to_string().as_str()));
        let json = event.clone().into_json().expect("serialisable");
        assert_eq!(json.event_type, "mercato.user.deleted.v1");
        assert!(json.decode::<UserRoleChanged>().is_none(), "another type is not decoded");
        let back = json.decode::<UserDeleted>().expect("its type").expect("its payload");
        assert_eq!(back, event);
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_an_error_not_a_panic() {
        let at: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().expect("a time");
        let mut json =
            CloudEvent::new("/mercato/users", at, None, UserDeleted { user_id: Uuid::nil(), deleted_at: at })
                .into_json()
                .expect("serialisable");
        json.data = serde_json::json!({"user_id": "not a uuid"});
        assert!(json.decode::<UserDeleted>().expect("its type").is_err());
    }

    #[test]
    fn every_type_is_listed_once_and_named_as_the_contract_says() {
        let mut types = ALL_TYPES.to_vec();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), ALL_TYPES.len());
        assert!(ALL_TYPES.iter().all(|t| t.starts_with("mercato.") && t.ends_with(".v1")));
    }
}
