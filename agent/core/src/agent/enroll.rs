//! Enrolment, on the agent borrowed apart from its capture half: the tray's service enrols while
//! capture keeps sampling in the same task, so enrolment must not need the sampler.

use super::{AgentError, Shared, Syncer};
use crate::config::{AgentConfig, Enrollment};
use crate::queue::Queue;
use crate::secrets::Secrets;
use crate::sync::{Credentials, SyncClient};
use std::path::Path;
use std::sync::Arc;
use worktrail_shared::api::{EnrollRequest, PolicyResponse};
use worktrail_shared::secret::{CompanyKey, DeviceToken};

/// Everything of an [`super::Agent`] but capture.
pub(super) struct Core<'a> {
    pub(super) dir: &'a Path,
    pub(super) config: &'a mut AgentConfig,
    pub(super) secrets: &'a Secrets,
    pub(super) shared: &'a Arc<Shared>,
    pub(super) queue: &'a Arc<Queue>,
    pub(super) syncer: &'a mut Syncer,
}

impl Core<'_> {
    /// Exchanges the company key for a device token and keeps both in the secret store.
    pub(super) async fn enroll(
        &mut self,
        server_url: &str,
        key: CompanyKey,
        email: Option<String>,
    ) -> Result<Enrollment, AgentError> {
        let client = SyncClient::new(server_url)?;
        let req = EnrollRequest {
            device_id: self.config.device_id,
            email: email.clone(),
            os_user: whoami::username().unwrap_or_else(|_| "unknown".into()),
            hostname: whoami::hostname().unwrap_or_else(|_| "unknown".into()),
            os: whoami::distro().unwrap_or_else(|_| std::env::consts::OS.into()),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        };
        let resp = client.enroll(&key, &req).await?;
        let token = DeviceToken::parse(&resp.device_token).map_err(|_| AgentError::BadToken)?;
        if self.config.enrollment.as_ref().is_some_and(|e| e.company_id != resp.company_id) {
            let dropped = self.queue.call(|db| db.clear()).await?;
            tracing::warn!(
                records = dropped,
                "enrolled with another company; discarded what was queued for the previous one"
            );
        }
        self.secrets.store(&key, &token)?;
        let enrollment = Enrollment {
            server_url: server_url.trim_end_matches('/').to_owned(),
            company_id: resp.company_id,
            company_name: resp.company_name,
            employee_id: resp.employee_id,
            email,
            enrolled_at_ms: self.syncer.clock.now_ms(),
        };
        self.config.enrollment = Some(enrollment.clone());
        self.config.save(self.dir)?;
        self.syncer.client = Some(client);
        self.syncer.creds = Some(Credentials { key, token });
        self.shared.state().enrolled = true;
        let policy =
            PolicyResponse { policy: resp.policy, time_zone: "UTC".into(), server_time_ms: 0 };
        self.syncer.apply_policy(policy).await;
        self.shared.set_blocked(None);
        self.queue.call(|db| db.set_meta("blocked", None)).await?;
        Ok(enrollment)
    }
}
