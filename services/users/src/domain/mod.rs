//! The users service's types and rules, with no I/O: what a valid email, password, name, phone
//! and address are, and how passwords are hashed.

pub mod address;
pub mod email;
pub mod login_guard;
pub mod password;
pub mod user;

pub use address::{CountryCode, NewAddress};
pub use email::Email;
pub use login_guard::LoginGuard;
pub use password::{Password, PasswordHasher};
pub use user::{Phone, UserName, UserSearch};
