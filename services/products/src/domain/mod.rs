//! The catalog's types and rules, with no I/O: products and their validation, SKUs,
//! categories, list queries and search syntax, stock reservations, image formats, the demo
//! catalog's pictures.

pub mod image;
pub mod listing;
pub mod picture;
pub mod product;
pub mod search;
pub mod sku;
pub mod stock;

pub use image::{ImageKey, ImageKind};
pub use listing::{CategoryCount, ListQuery, Listing, Paging, Sort};
pub use product::{Category, LookupItem, NewProduct, Product, ProductPatch};
pub use search::SearchQuery;
pub use sku::Sku;
pub use stock::{
    DEFAULT_LOW_STOCK_THRESHOLD, Reservation, ReservationLine, ReservationRequest, ReservationState,
    Shortage, crossed_low_stock,
};
