//! HTTP routes, one module per area. Handlers only parse, call and map.

pub mod admin;
pub mod agent;
pub mod health;
pub mod login;
pub mod me;
pub mod owner;
pub mod signin;
