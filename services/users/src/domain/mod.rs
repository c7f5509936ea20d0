//! The users service's types and rules, with no I/O: what a valid email, password, name, phone
//! and address are, what an account and an address book entry are, how passwords are hashed,
//! and how failed logins are throttled.

pub mod address;
pub mod email;
pub mod login_guard;
pub mod password;
pub mod user;

pub use address::{Address, AddressChanges, CountryCode, NewAddress};
pub use email::Email;
pub use login_guard::LoginGuard;
pub use password::{Password, PasswordHasher};
pub use user::{AdminChanges, NewAccount, PersonRole, Phone, ProfileChanges, User, UserName, UserSearch};
