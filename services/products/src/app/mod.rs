//! The products service's use cases, one file per group: the catalogue (create, change,
//! delete, read, list and search, categories, the low-stock report, lookup for pricing),
//! images (upload with decoding, download) and reservations (reserve, release, state). Each
//! struct owns what its use cases need (the stores, the image store); each method returns its
//! own error enum, never an HTTP status.

pub(crate) mod catalog;
pub(crate) mod images;
pub(crate) mod reservations;
