//! Extractors that authenticate a request. A handler's parameter list is its authorization:
//! agent handlers receive a [`agent::CompanyCtx`] or [`agent::DeviceCtx`], whose company id
//! comes from the proven key, never from a path or body.

pub mod agent;
