//! The `mercato` command's library: how the whole shop is composed in one process (the embedded
//! default), and how one service is run alone from its environment (what a container runs).
//!
//! **Architecture invariant**: services still talk to each other over HTTP on loopback here,
//! so what a developer sees on a laptop is what the cluster does.

pub mod address;
pub mod bench;
pub mod chores;
pub mod console;
pub mod embedded;
pub mod env;
pub mod events;
pub mod lock;
pub mod probe;
pub mod seed;
pub mod serve;
