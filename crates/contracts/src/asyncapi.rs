//! The AsyncAPI 3.0 document of mercato's events, built from the payload types themselves
//! (their `utoipa` schemas), so the document cannot drift from the wire. `docs/asyncapi.json`
//! is its committed copy: a test compares the two, and CI validates it with `@asyncapi/cli`.

use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::events::{
    DATA_CONTENT_TYPE, EXCHANGE, EventData, OrderCancelled, OrderPlaced, OrderStatusChanged, ProductCreated,
    ProductDeleted, ProductStockLow, ProductUpdated, SPEC_VERSION, UserDeleted, UserRegistered,
    UserRoleChanged,
};

/// Collects one event type's channel, operation, message and schemas.
#[derive(Default)]
struct Builder {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Builder {
    fn event<D: EventData + ToSchema>(&mut self, producer: &str, summary: &str) {
        let name = D::name().into_owned();
        self.schemas.push((name.clone(), D::schema()));
        D::schemas(&mut self.schemas);
        self.messages.insert(
            name.clone(),
            json!({
                "name": name,
                "title": D::TYPE,
                "summary": summary,
                "contentType": "application/cloudevents+json",
                "payload": envelope::<D>(&name),
            }),
        );
        self.channels.insert(
            D::TYPE.to_owned(),
            json!({
                "address": D::TYPE,
                "description": format!("Routing key `{}` on the topic exchange `{EXCHANGE}`.", D::TYPE),
                "messages": { name.clone(): { "$ref": format!("#/components/messages/{name}") } },
                "bindings": { "amqp": {
                    "is": "routingKey",
                    "exchange": { "name": EXCHANGE, "type": "topic", "durable": true, "autoDelete": false, "vhost": "/" },
                    "bindingVersion": "0.3.0",
                } },
            }),
        );
        self.operations.insert(
            format!("send{name}"),
            json!({
                "action": "send",
                "summary": format!("The {producer} service publishes it."),
                "channel": { "$ref": format!("#/channels/{}", D::TYPE) },
                "messages": [ { "$ref": format!("#/channels/{}/messages/{name}", D::TYPE) } ],
                "bindings": { "amqp": { "deliveryMode": 2, "bindingVersion": "0.3.0" } },
            }),
        );
    }
}

/// The CloudEvents 1.0 structured-mode envelope around payload `D` (named `name`).
fn envelope<D: EventData>(name: &str) -> Value {
    json!({
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "data"],
        "properties": {
            "specversion": { "const": SPEC_VERSION },
            "id": { "type": "string", "format": "uuid", "description": "Unique per event: a consumer applies each id once." },
            "source": { "type": "string", "description": "The producing service, e.g. `/mercato/users`." },
            "type": { "const": D::TYPE },
            "time": { "type": "string", "format": "date-time" },
            "subject": { "type": "string", "description": "The id of the entity the event is about." },
            "datacontenttype": { "const": DATA_CONTENT_TYPE },
            "traceparent": { "type": "string", "description": "W3C trace context of the request that made the change." },
            "data": { "$ref": format!("#/components/schemas/{name}") },
        },
    })
}

/// The whole document, as JSON (which is also YAML).
pub fn document() -> Value {
    let mut builder = Builder::default();
    builder.event::<UserRegistered>("users", "An account was created.");
    builder.event::<UserDeleted>(
        "users",
        "An account was deleted; every token of the user is refused from now on.",
    );
    builder.event::<UserRoleChanged>(
        "users",
        "An account's role changed; tokens issued before, or carrying another role, are refused from now on.",
    );
    builder.event::<ProductCreated>("products", "A product was created.");
    builder.event::<ProductUpdated>("products", "A product changed (fields, price, stock or images).");
    builder.event::<ProductDeleted>("products", "A product was deleted and is no longer for sale.");
    builder.event::<ProductStockLow>(
        "products",
        "A product's stock fell to or below the low-stock threshold (once per crossing).",
    );
    builder.event::<OrderPlaced>("orders", "An order was confirmed: its stock is held.");
    builder.event::<OrderCancelled>("orders", "An order was cancelled; its stock goes back.");
    builder.event::<OrderStatusChanged>("orders", "A confirmed order was paid, shipped or delivered.");
    let mut schemas = Map::new();
    for (name, schema) in builder.schemas {
        let schema = serde_json::to_value(schema).unwrap_or(Value::Null);
        schemas.entry(name).or_insert(schema);
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "mercato events",
            "version": "1.0.0",
            "description": "The events mercato's services publish: CloudEvents 1.0 in JSON structured mode (with the W3C `traceparent` extension) on RabbitMQ's durable topic exchange `mercato.events`, the routing key equal to the event's type (in-process on the embedded default). Delivery is at least once; `id` is unique per event, so a consumer that remembers ids applies each once. Generated from the `contracts` crate (`contracts::asyncapi::document`).",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ; persistent messages, publisher confirms, a durable queue per consuming service.",
            },
        },
        "channels": builder.channels,
        "operations": builder.operations,
        "components": { "messages": builder.messages, "schemas": schemas },
    })
}
