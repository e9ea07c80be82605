//! Operator actions shared by the CLI, the demo and (later) the owner portal: plans, owners,
//! companies and their keys. Each returns the one-time secrets it created; nothing here prints.

use worktrail_shared::secret::CompanyKey;
use worktrail_shared::{CompanyId, CompanyKeyId, OwnerId, UserId};

use crate::domain::keys::{hash_secret, new_company_key};
use crate::domain::password::hash_password;
use crate::domain::plan::Plan;
use crate::domain::subscription::{DAY_MS, Subscription, SubscriptionStatus};
use crate::store::{NewCompany, NewKey, NewUser, Role, Store, StoreError};

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The input is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed or refused (e.g. a duplicate name).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores the default plans that are not there yet; returns every plan.
pub async fn seed_default_plans(store: &dyn Store, now_ms: i64) -> Result<Vec<Plan>, StoreError> {
    for plan in Plan::defaults() {
        if store.plan_by_code(&plan.code).await?.is_none() {
            store.create_plan(&plan, now_ms).await?;
        }
    }
    store.list_plans().await
}

/// Validates and stores a plan.
pub async fn create_plan(
    store: &dyn Store,
    plan: &Plan,
    now_ms: i64,
) -> Result<(), ProvisionError> {
    plan.validate().map_err(ProvisionError::Invalid)?;
    Ok(store.create_plan(plan, now_ms).await?)
}

fn check_email(email: &str) -> Result<String, ProvisionError> {
    let email = email.trim().to_lowercase();
    let parts: Vec<&str> = email.split('@').collect();
    if email.len() > 254
        || parts.len() != 2
        || parts.iter().any(|p| p.is_empty())
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ProvisionError::Invalid(format!("{email:?} is not a valid e-mail address")));
    }
    Ok(email)
}

fn check_password(password: &str) -> Result<(), ProvisionError> {
    if password.chars().count() < 12 {
        return Err(ProvisionError::Invalid("a password needs at least 12 characters".into()));
    }
    Ok(())
}

/// Creates a platform operator.
pub async fn create_owner(
    store: &dyn Store,
    email: &str,
    password: &str,
    now_ms: i64,
) -> Result<OwnerId, ProvisionError> {
    let email = check_email(email)?;
    check_password(password)?;
    let id = OwnerId::new();
    store.create_owner(id, &email, &hash_password(password), now_ms).await?;
    Ok(id)
}

/// Checks an IANA time-zone name against the time-zone database.
pub fn check_time_zone(name: &str) -> Result<(), ProvisionError> {
    jiff::tz::TimeZone::get(name)
        .map(|_| ())
        .map_err(|_| ProvisionError::Invalid(format!("{name:?} is not a known IANA time zone")))
}

/// A company created by [`create_company`], with its key (shown once, stored only hashed).
#[derive(Debug)]
pub struct CreatedCompany {
    /// Its id.
    pub id: CompanyId,
    /// Its first company key.
    pub key: CompanyKey,
}

fn new_key(key: &CompanyKey, now_ms: i64) -> NewKey {
    NewKey {
        id: CompanyKeyId::new(),
        hash: hash_secret(key.expose()),
        display_prefix: key.display_prefix().to_owned(),
        created_at_ms: now_ms,
        expires_at_ms: None,
    }
}

/// Creates a company on `plan_code`, starting with the plan's trial (or a 30-day paid period
/// for a plan without a trial), with a fresh key and the default policy.
pub async fn create_company(
    store: &dyn Store,
    name: &str,
    plan_code: &str,
    time_zone: &str,
    now_ms: i64,
) -> Result<CreatedCompany, ProvisionError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ProvisionError::Invalid(
            "a company name needs 1–200 printable characters".into(),
        ));
    }
    check_time_zone(time_zone)?;
    let plan = store
        .plan_by_code(plan_code)
        .await?
        .ok_or_else(|| ProvisionError::Invalid(format!("no plan with code {plan_code:?}")))?;
    let subscription = if plan.trial_days > 0 {
        Subscription::trial(now_ms, plan.trial_days)
    } else {
        Subscription {
            status: SubscriptionStatus::Active,
            trial_ends_at_ms: None,
            period_end_at_ms: Some(now_ms + 30 * DAY_MS),
            grace_days: 7,
        }
    };
    let key = new_company_key();
    let id = CompanyId::new();
    store
        .create_company(&NewCompany {
            id,
            name: name.to_owned(),
            plan_id: plan.id,
            time_zone: time_zone.to_owned(),
            subscription,
            key: new_key(&key, now_ms),
            policy: Default::default(),
            now_ms,
        })
        .await?;
    Ok(CreatedCompany { id, key })
}

/// Issues a new company key; the company's other keys keep working for `grace_ms`, then stop.
pub async fn rotate_company_key(
    store: &dyn Store,
    company: CompanyId,
    grace_ms: i64,
    now_ms: i64,
) -> Result<CompanyKey, ProvisionError> {
    let key = new_company_key();
    let stored = new_key(&key, now_ms);
    store.add_company_key(company, &stored).await?;
    store.expire_company_keys(company, stored.id, now_ms + grace_ms).await?;
    Ok(key)
}

/// Checks a new password's strength (length); the message says what is wrong.
pub fn password_ok(password: &str) -> Result<(), ProvisionError> {
    check_password(password)
}

/// Creates a company user who can sign in with `password`.
pub async fn create_user(
    store: &dyn Store,
    company: CompanyId,
    email: &str,
    display_name: &str,
    role: Role,
    password: &str,
    now_ms: i64,
) -> Result<UserId, ProvisionError> {
    let email = check_email(email)?;
    check_password(password)?;
    let id = UserId::new();
    store
        .create_user(
            company,
            &NewUser {
                id,
                email,
                display_name: display_name.trim().to_owned(),
                role,
                password_hash: Some(hash_password(password)),
                now_ms,
            },
        )
        .await?;
    Ok(id)
}

/// How long an invitation link works.
pub const INVITATION_MS: i64 = 7 * crate::domain::subscription::DAY_MS;

/// Creates a user without a password (or finds the existing one) and a single-use invitation
/// for them to set it; returns the invitation token, to be shown to whoever invited (and mailed
/// when mail is configured). The token is stored only hashed.
pub async fn invite_user(
    store: &dyn Store,
    company: CompanyId,
    email: &str,
    display_name: &str,
    role: Role,
    created_by: &str,
    now_ms: i64,
) -> Result<String, ProvisionError> {
    let email = check_email(email)?;
    let user = match store.user_by_email(company, &email).await? {
        Some(u) => u.id,
        None => {
            let id = UserId::new();
            let name = if display_name.trim().is_empty() {
                email.clone()
            } else {
                display_name.trim().to_owned()
            };
            store
                .create_user(
                    company,
                    &NewUser { id, email, display_name: name, role, password_hash: None, now_ms },
                )
                .await?;
            id
        }
    };
    let token = crate::auth::session::new_token();
    store
        .create_invitation(
            company,
            user,
            &hash_secret(&token),
            created_by,
            now_ms,
            now_ms + INVITATION_MS,
        )
        .await?;
    Ok(token)
}
