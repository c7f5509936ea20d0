//! Orders' types and rules, with no I/O: the order and who may see it, the status machine,
//! money totals and tax, and what a valid checkout request is.

pub mod checkout;
pub mod order;
pub mod status;
pub mod totals;

pub use checkout::{CheckoutRequest, IdempotencyKey, OrderLineRequest, ShippingChoice, parse_quote_lines};
pub use order::{Order, Viewer};
pub use status::OrderStatus;
pub use totals::{PricedLine, Totals};
