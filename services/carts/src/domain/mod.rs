//! The cart's rules, no I/O: what a quantity may be, how many lines a cart holds, and how a
//! cart is priced from the catalog's answer.

mod cart;

pub use cart::{
    BOUNDS, CartLine, CatalogEntry, PricedCart, PricedLine, Quantity, QuantityChange, StoredCart, price,
};
