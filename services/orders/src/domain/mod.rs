//! Orders' types and rules, with no I/O: the status machine, money totals and tax, and what a
//! valid checkout request is.

pub mod checkout;
pub mod status;
pub mod totals;

pub use checkout::{CheckoutRequest, OrderLineRequest, ShippingChoice};
pub use status::OrderStatus;
pub use totals::{PricedLine, Totals};
