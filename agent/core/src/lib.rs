//! Worktrail agent core: everything the agent does without a webview.
//!
//! The pieces, each testable on its own: [`probe`] reads the desktop (active window, idle time,
//! screens) behind traits with fakes; [`sampler`] turns one-second samples into spans, idle spans,
//! work sessions and per-minute activity, applying the [`policy`]'s privacy rules before anything
//! leaves memory; [`queue`] is the durable local SQLite queue (one owner thread); [`sync`] moves
//! the queue to the server; [`secrets`] keeps the company key and device token out of files and
//! logs; [`agent`] ties them into step functions (`sample_once`, `sync_once`) and the run loop
//! that the headless `worktrail-agentd` and the tray app both drive. [`websites`] adds the sites,
//! from a browser extension on loopback joined to the active window.

pub mod agent;
pub mod cli;
pub mod clock;
pub mod config;
pub mod fault;
pub mod policy;
pub mod probe;
pub mod queue;
pub mod sampler;
pub mod secrets;
pub mod sync;
pub mod websites;

pub use agent::{Agent, AgentStatus};
pub use clock::{Clock, ManualClock, SystemClock};
