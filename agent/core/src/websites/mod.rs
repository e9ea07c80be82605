//! Websites: which site the employee works in, from a browser extension that reports the active
//! tab over loopback, or — without one — from the browser window's title (a guess, marked so).
//!
//! [`listener`] is the loopback edge (admission, pairing, reports into [`tabs::Tabs`]); [`join`]
//! decides per sample which site the *active window* shows and what the policy lets the agent keep;
//! [`spans`] merges samples into website spans, which the sampler queues with the other records.
//! URLs live in memory only; what reaches the queue has passed the policy.

pub mod join;
pub mod listener;
pub mod pairing;
#[cfg(test)]
mod sampler_tests;
pub mod site;
pub mod spans;
pub mod tabs;

use crate::clock::Clock;
use std::net::SocketAddr;
use std::sync::Arc;

/// The agent's default loopback port for the extension (`extension_port` in `agent.json`).
pub const DEFAULT_PORT: u16 = 47811;

/// What the listener shares with the sampler.
#[derive(Debug)]
pub struct Extensions {
    /// The extensions' reports, read by the sampler.
    pub tabs: Arc<tabs::Tabs>,
    /// Paired extensions.
    pub pairings: pairing::Pairings,
    /// The agent's clock.
    pub clock: Arc<dyn Clock>,
}

impl Extensions {
    /// The extension side of `agent`: its sampler's tab reports, its data dir's pairings.
    pub fn of(agent: &crate::Agent) -> Arc<Self> {
        Arc::new(Self {
            tabs: agent.capture.tabs(),
            pairings: pairing::Pairings::new(agent.data_dir()),
            clock: agent.capture.clock(),
        })
    }
}

/// A running listener; dropping it stops it.
#[derive(Debug)]
pub struct Listener {
    /// The address it serves on.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the listener on `127.0.0.1:port` (0: any free port) until dropped.
pub async fn listen(ext: Arc<Extensions>, port: u16) -> std::io::Result<Listener> {
    let socket = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).await?;
    let addr = socket.local_addr()?;
    let app =
        listener::router(ext, addr.port()).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(socket, app).await {
            tracing::error!(error = %e, "the browser extension listener stopped");
        }
    });
    tracing::info!(%addr, "listening for the browser extension");
    Ok(Listener { addr, task })
}
