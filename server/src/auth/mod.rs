//! Extractors that authenticate a request. A handler's parameter list is its authorization:
//! agent handlers receive a [`agent::CompanyCtx`] or [`agent::DeviceCtx`], portal handlers an
//! [`session::OwnerSession`], [`session::AdminSession`] or [`session::EmployeeSession`]; the
//! company always comes from the proven credential, never from a path or body.

pub mod agent;
pub mod guard;
pub mod session;
pub mod throttle;
