//! The wire types between mercato services: what one service sends and another reads, defined
//! once so that producer and consumer cannot drift apart.
//!
//! **API boundary**: every service and `kit` depend on this crate. Each type here is pinned to a
//! golden JSON file (`tests/golden/`), so a change to the wire format shows up as a diff there.
//!
//! **Architecture invariant**: no service code and no I/O — only types, their serde and OpenAPI
//! derives, and pure helpers. It depends on no mercato crate.
//!
//! - [`asyncapi`]: the AsyncAPI 3.0 document of the events, built from their types.
//! - [`events`]: the CloudEvents envelope every event travels in, and each event's payload.
//! - [`money`]: `Money`, the one way an amount travels (integer minor units and a currency).
//! - [`products`]: the products service's `/internal/` lookup and stock reservations.
//! - [`users`]: the users service's address body and answer, and its service-token exchange.

pub mod asyncapi;
pub mod events;
pub mod money;
pub mod products;
pub mod users;

pub use money::Money;
