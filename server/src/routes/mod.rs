//! HTTP routes, one module per area. Handlers only parse, call and map.

pub mod agent;
pub mod health;
