//! Money, re-exported from `contracts` (where the wire types live) so services keep writing
//! `kit::money::Money`.

pub use contracts::money::{MAX_AMOUNT, Money};
