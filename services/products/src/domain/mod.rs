//! The catalog's types and rules, with no I/O: products and their validation, SKUs,
//! categories, list queries and search syntax, stock reservations, image formats.

pub mod image;
pub mod listing;
pub mod product;
pub mod search;
pub mod sku;
pub mod stock;

pub use image::ImageKind;
pub use listing::{ListQuery, Sort};
pub use product::{Category, NewProduct, Product, ProductPatch};
pub use search::SearchQuery;
pub use sku::Sku;
pub use stock::{ReservationLine, ReservationRequest};
