//! An EMPLOYEE's own data: the full export.

use serde::Serialize;
use worktrail_shared::{CompanyId, UserId};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AccessRow, EmployeeDay};

/// Everything the service holds about one employee.
#[derive(Debug, Serialize)]
pub struct Export {
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
    /// All records.
    pub records: EmployeeDay,
    /// Who viewed their data.
    pub access_log: Vec<AccessRow>,
}

/// All of `user`'s data.
pub async fn export(
    state: &AppState,
    company: CompanyId,
    user: UserId,
) -> Result<Export, ApiError> {
    let me = state
        .store
        .user(company, user)
        .await?
        .ok_or_else(|| ApiError::internal("session user vanished"))?;
    Ok(Export {
        email: me.email,
        name: me.display_name,
        records: state.store.employee_day(company, user, 0, i64::MAX / 2).await?,
        access_log: state.store.access_log(company, user).await?,
    })
}
