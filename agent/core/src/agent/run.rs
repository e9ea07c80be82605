//! The run loop: sampling and syncing side by side until `shutdown` resolves, then a clean stop
//! (open spans and the session are closed and written). Cancelling a sync mid-batch is safe: the
//! queue changes only in transactions and the batch is resent with the same id next time.

use super::{Agent, AgentError};
use std::time::Duration;

impl Agent {
    /// Starts the browser extension's loopback listener on the configured port (`None` when
    /// it is off, or the port is taken: that costs the sites, not the rest of the capture). It
    /// serves until the returned value is dropped.
    pub fn listen_for_browsers(
        &self,
    ) -> impl Future<Output = Option<crate::websites::Listener>> + Send + 'static {
        let port = self.config.extension_port;
        let ext = crate::websites::Extensions::of(self);
        async move {
            if port == 0 {
                return None;
            }
            crate::websites::listen(ext, port)
                .await
                .inspect_err(|e| tracing::warn!(port, error = %e, "no browser extension listener"))
                .ok()
        }
    }

    /// Captures and syncs until `shutdown` completes.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        // Start under the server's current policy, not the cached one.
        if let Err(e) = self.syncer.refresh_policy().await {
            tracing::warn!(error = %e, "could not fetch the policy; using the last one known");
        }
        let _listener = self.listen_for_browsers().await;
        let capture = &mut self.capture;
        let syncer = &mut self.syncer;
        let capture_loop = async {
            let mut first = true;
            loop {
                let secs = capture.shared.policy().policy.sample_interval_secs.max(1);
                if let Err(e) = capture.sample_once().await {
                    tracing::error!(error = %e, "sampling failed");
                }
                if std::mem::take(&mut first) {
                    let (capturing, policy) = capture.shared.capture_allowed();
                    tracing::info!(
                        capturing,
                        sample_secs = secs,
                        sync_secs = policy.policy.sync_interval_secs,
                        "capture started"
                    );
                }
                tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
            }
        };
        let sync_loop = async {
            loop {
                syncer.step().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        tokio::select! {
            () = shutdown => tracing::info!("stopping"),
            () = capture_loop => {}
            () = sync_loop => {}
        }
        let written = self.capture.stop().await?;
        tracing::info!(records = written, "capture stopped; open spans written");
        Ok(())
    }
}
