//! Pure business rules, no I/O: subscriptions, plans, secrets, passwords. Everything here is
//! unit-tested against an explicit clock value.

pub mod keys;
pub mod password;
pub mod plan;
pub mod policy;
pub mod subscription;
