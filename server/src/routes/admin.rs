//! ADMIN pages and JSON API. Every handler gets its company from the [`AdminSession`].

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use worktrail_shared::policy::{Policy, PrivacyRule, RuleAction, RuleTarget, ScheduleWindow};
use worktrail_shared::{DeviceId, ErrorCode, RecordId, UserId};

use crate::auth::session::AdminSession;
use crate::domain::subscription::DAY_MS;
use crate::error::ApiError;
use crate::portal::admin::{apps_csv, overview, person_day, timeline};
use crate::portal::owner::provision_error;
use crate::portal::{Access, Message, Route, render, route};
use crate::provision;
use crate::state::AppState;
use crate::store::{AuditEntry, Role};

/// The admin's routes.
pub fn routes() -> Vec<Route> {
    use Access::Admin;
    vec![
        route(
            "GET",
            "/admin",
            Admin,
            "Company overview: who tracked today and this week, top apps and sites",
            get(overview_page),
        ),
        route("GET", "/admin/employees", Admin, "Employees", get(employees_page)),
        route(
            "POST",
            "/admin/employees",
            Admin,
            "Invite an employee or admin (form)",
            post(invite),
        ),
        route(
            "POST",
            "/admin/employees/{user}/active",
            Admin,
            "Activate or deactivate a user (form)",
            post(set_active),
        ),
        route(
            "GET",
            "/admin/employees/{user}/day",
            Admin,
            "One employee's day (records a data access)",
            get(day_page),
        ),
        route(
            "GET",
            "/admin/screenshots/{id}",
            Admin,
            "A screenshot's JPEG (records a data access)",
            get(screenshot),
        ),
        route("GET", "/admin/devices", Admin, "Devices", get(devices_page)),
        route(
            "POST",
            "/admin/devices/{device}/revoke",
            Admin,
            "Revoke a device (form)",
            post(revoke),
        ),
        route("GET", "/admin/policy", Admin, "Collection policy", get(policy_page)),
        route(
            "POST",
            "/admin/policy",
            Admin,
            "Change the collection policy (form)",
            post(policy_form),
        ),
        route("GET", "/admin/keys", Admin, "Company keys", get(keys_page)),
        route("POST", "/admin/keys/rotate", Admin, "Rotate the company key (form)", post(rotate)),
        route("GET", "/admin/tasks", Admin, "Tasks", get(tasks_page)),
        route("POST", "/admin/tasks", Admin, "Add a task (form)", post(add_task)),
        route(
            "GET",
            "/admin/export.csv",
            Admin,
            "App time of every employee, last 30 days, as CSV",
            get(export),
        ),
        route("GET", "/api/v1/admin/overview", Admin, "Overview data", get(overview_api)),
        route("GET", "/api/v1/admin/employees", Admin, "Employees", get(employees_api)),
        route(
            "GET",
            "/api/v1/admin/employees/{user}/day",
            Admin,
            "One employee's day",
            get(day_api),
        ),
        route("GET", "/api/v1/admin/devices", Admin, "Devices", get(devices_api)),
        route("GET", "/api/v1/admin/policy", Admin, "Collection policy", get(policy_api)),
        route(
            "PUT",
            "/api/v1/admin/policy",
            Admin,
            "Replace the collection policy",
            axum::routing::put(policy_put),
        ),
    ]
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no such {what}"))
}

async fn overview_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    let o = overview(&s, a.company).await?;
    Ok(render("admin_overview.html", minijinja::context! { nav => "admin", o => o })?
        .into_response())
}

async fn overview_api(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    Ok(Json(overview(&s, a.company).await?).into_response())
}

async fn employee_list(
    s: &AppState,
    company: worktrail_shared::CompanyId,
) -> Result<serde_json::Value, ApiError> {
    let rows = s.store.employees(company).await?;
    Ok(serde_json::Value::Array(
        rows.into_iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id, "email": e.email, "name": e.display_name,
                    "role": e.role.as_str(), "active": e.active, "devices": e.devices,
                    "last_seen_at_ms": e.last_seen_at_ms,
                })
            })
            .collect(),
    ))
}

async fn employees_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    let list = employee_list(&s, a.company).await?;
    Ok(render(
        "admin_employees.html",
        minijinja::context! { nav => "admin", employees => list, me => a.user.to_string() },
    )?
    .into_response())
}

async fn employees_api(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    Ok(Json(employee_list(&s, a.company).await?).into_response())
}

#[derive(Debug, Deserialize)]
struct InviteForm {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn invite(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Form(f): Form<InviteForm>,
) -> Result<Response, ApiError> {
    let role = if f.role == "ADMIN" { Role::Admin } else { Role::Employee };
    let actor = format!("admin:{}", a.user);
    let token = provision::invite_user(
        s.store.as_ref(),
        a.company,
        &f.email,
        &f.name,
        role,
        &actor,
        s.now_ms(),
    )
    .await
    .map_err(provision_error)?;
    audit(&s, a.company, &actor, "user.invited", serde_json::json!({ "role": role.as_str() }))
        .await?;
    Ok(render(
        "message.html",
        Message {
            nav: "admin",
            heading: format!("{} invited", f.email.trim()),
            lines: vec!["Send them this link; it works once, for 7 days.".into()],
            link: Some(format!("/invite/{token}")),
            back: Some("/admin/employees".into()),
            ..Default::default()
        },
    )?
    .into_response())
}

async fn audit(
    s: &AppState,
    company: worktrail_shared::CompanyId,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        actor: actor.to_owned(),
        action: action.to_owned(),
        detail_json: detail.to_string(),
        at_ms: s.now_ms(),
    };
    Ok(s.store.append_audit(company, &entry).await?)
}

#[derive(Debug, Deserialize)]
struct ActiveForm {
    active: String,
}

async fn set_active(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Path(user): Path<String>,
    Form(f): Form<ActiveForm>,
) -> Result<Response, ApiError> {
    let user: UserId = user.parse().map_err(|_| not_found("user"))?;
    if user == a.user {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "you cannot deactivate yourself"));
    }
    let active = f.active == "true";
    s.store.set_user_active(a.company, user, active).await?;
    audit(
        &s,
        a.company,
        &format!("admin:{}", a.user),
        if active { "user.activated" } else { "user.deactivated" },
        serde_json::json!({ "user": user }),
    )
    .await?;
    Ok(Redirect::to("/admin/employees").into_response())
}

#[derive(Debug, Default, Deserialize)]
struct DateQuery {
    date: Option<String>,
}

async fn day_data(
    s: &AppState,
    a: crate::auth::session::CompanyUser,
    user: &str,
    date: Option<&str>,
) -> Result<crate::portal::admin::PersonDay, ApiError> {
    let user: UserId = user.parse().map_err(|_| not_found("employee"))?;
    let d = person_day(s, a.company, user, date).await?;
    s.store.log_access(a.company, a.user, user, &format!("day {}", d.day.date), s.now_ms()).await?;
    Ok(d)
}

async fn day_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Path(user): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<Response, ApiError> {
    let d = day_data(&s, a, &user, q.date.as_deref()).await?;
    let svg = timeline(&d);
    Ok(render("admin_day.html", minijinja::context! { nav => "admin", d => d, timeline => svg, shots_base => "/admin/screenshots" })?.into_response())
}

async fn day_api(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Path(user): Path<String>,
    Query(q): Query<DateQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(day_data(&s, a, &user, q.date.as_deref()).await?).into_response())
}

/// A screenshot's bytes, if `allowed` says the caller may see the employee who owns it.
pub async fn screenshot_bytes(
    s: &AppState,
    company: worktrail_shared::CompanyId,
    id: &str,
    allowed: impl Fn(UserId) -> bool,
) -> Result<(UserId, Vec<u8>), ApiError> {
    let id: RecordId = id.parse().map_err(|_| not_found("screenshot"))?;
    let (owner, key) =
        s.store.screenshot_object(company, id).await?.ok_or_else(|| not_found("screenshot"))?;
    if !allowed(owner) {
        return Err(not_found("screenshot"));
    }
    let key = key.ok_or_else(|| not_found("screenshot (not uploaded yet)"))?;
    let bytes = s.objects.get(&key).await.map_err(|_| not_found("screenshot (deleted)"))?;
    Ok((owner, bytes))
}

async fn screenshot(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (owner, bytes) = screenshot_bytes(&s, a.company, &id, |_| true).await?;
    s.store.log_access(a.company, a.user, owner, &format!("screenshot {id}"), s.now_ms()).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response())
}

async fn device_list(
    s: &AppState,
    company: worktrail_shared::CompanyId,
) -> Result<serde_json::Value, ApiError> {
    let devices = s.store.devices(company).await?;
    Ok(serde_json::Value::Array(devices.into_iter().map(|d| serde_json::json!({
        "id": d.id, "employee_id": d.employee_id, "hostname": d.hostname, "token_prefix": d.token_prefix,
        "enrolled_at_ms": d.enrolled_at_ms, "last_seen_at_ms": d.last_seen_at_ms,
        "clock_offset_ms": d.clock_offset_ms, "revoked_at_ms": d.revoked_at_ms,
    })).collect()))
}

async fn devices_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    let devices = device_list(&s, a.company).await?;
    Ok(render("admin_devices.html", minijinja::context! { nav => "admin", devices => devices })?
        .into_response())
}

async fn devices_api(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    Ok(Json(device_list(&s, a.company).await?).into_response())
}

async fn revoke(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Path(device): Path<String>,
) -> Result<Response, ApiError> {
    let device: DeviceId = device.parse().map_err(|_| not_found("device"))?;
    s.store.revoke_device(a.company, device, s.now_ms()).await?;
    audit(
        &s,
        a.company,
        &format!("admin:{}", a.user),
        "device.revoked",
        serde_json::json!({ "device": device }),
    )
    .await?;
    Ok(Redirect::to("/admin/devices").into_response())
}

async fn current_policy(
    s: &AppState,
    company: worktrail_shared::CompanyId,
) -> Result<Policy, ApiError> {
    Ok(s.store
        .company(company)
        .await?
        .ok_or_else(|| ApiError::internal("company vanished"))?
        .policy)
}

#[derive(Debug, Default, Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn policy_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Query(q): Query<SavedQuery>,
) -> Result<Response, ApiError> {
    let p = current_policy(&s, a.company).await?;
    let rules: Vec<String> = p
        .privacy_rules
        .iter()
        .map(|r| format!("{} {} {}", action_word(r.action), target_word(r.target), r.pattern))
        .collect();
    Ok(render("admin_policy.html", minijinja::context! { nav => "admin", p => p, rules => rules.join("\n"), saved => q.saved.is_some(), schedule => schedule_text(&p.schedule) })?.into_response())
}

fn action_word(a: RuleAction) -> &'static str {
    match a {
        RuleAction::Drop => "drop",
        RuleAction::Redact => "redact",
    }
}

fn target_word(t: RuleTarget) -> &'static str {
    match t {
        RuleTarget::App => "app",
        RuleTarget::Title => "title",
        RuleTarget::Domain => "domain",
    }
}

fn parse_rules(text: &str) -> Result<Vec<PrivacyRule>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (action, target, pattern) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("").trim(),
            );
            let action = match action {
                "drop" => RuleAction::Drop,
                "redact" => RuleAction::Redact,
                _ => return Err(rule_error(line)),
            };
            let target = match target {
                "app" => RuleTarget::App,
                "title" => RuleTarget::Title,
                "domain" => RuleTarget::Domain,
                _ => return Err(rule_error(line)),
            };
            Ok(PrivacyRule { target, pattern: pattern.to_owned(), action })
        })
        .collect()
}

fn minute_of(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

/// Lines like `1 09:00-17:30` (ISO weekday, 1 = Monday).
fn parse_schedule(text: &str) -> Result<Vec<ScheduleWindow>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let bad = || {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("schedule line {line:?}: write `weekday HH:MM-HH:MM`, weekday 1 (Monday) to 7"),
                )
            };
            let (day, range) = line.split_once(' ').ok_or_else(bad)?;
            let (from, to) = range.split_once('-').ok_or_else(bad)?;
            Ok(ScheduleWindow {
                weekday: day.parse().map_err(|_| bad())?,
                start_minute: minute_of(from).ok_or_else(bad)?,
                end_minute: minute_of(to).ok_or_else(bad)?,
            })
        })
        .collect()
}

fn schedule_text(windows: &[ScheduleWindow]) -> String {
    windows
        .iter()
        .map(|w| {
            let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
            format!("{} {}-{}", w.weekday, hm(w.start_minute), hm(w.end_minute))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rule_error(line: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("privacy rule {line:?}: write `drop|redact app|title|domain pattern`"),
    )
}

#[derive(Debug, Deserialize)]
struct PolicyForm {
    screenshots_enabled: Option<String>,
    screenshot_interval_secs: u32,
    blur: Option<String>,
    idle_threshold_secs: u32,
    allow_pause: Option<String>,
    full_url: Option<String>,
    employees_delete_screenshots: Option<String>,
    retention_days: Option<String>,
    #[serde(default)]
    privacy_rules: String,
    #[serde(default)]
    schedule: String,
}

async fn save_policy(
    s: &AppState,
    a: crate::auth::session::CompanyUser,
    p: &Policy,
) -> Result<(), ApiError> {
    crate::domain::policy::validate(p).map_err(|m| ApiError::new(ErrorCode::InvalidRequest, m))?;
    s.store.set_policy(a.company, p).await?;
    audit(
        s,
        a.company,
        &format!("admin:{}", a.user),
        "policy.changed",
        serde_json::to_value(p).unwrap_or_default(),
    )
    .await
}

async fn policy_form(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Form(f): Form<PolicyForm>,
) -> Result<Response, ApiError> {
    let mut p = current_policy(&s, a.company).await?;
    p.screenshots.enabled = f.screenshots_enabled.is_some();
    p.screenshots.interval_secs = f.screenshot_interval_secs;
    p.screenshots.blur = f.blur.is_some();
    p.idle_threshold_secs = f.idle_threshold_secs;
    p.allow_pause = f.allow_pause.is_some();
    p.websites.full_url = f.full_url.is_some();
    p.employees_delete_screenshots = f.employees_delete_screenshots.is_some();
    p.retention_days = match f.retention_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(d.parse().map_err(|_| {
            ApiError::new(ErrorCode::InvalidRequest, "retention must be a number of days")
        })?),
    };
    p.privacy_rules = parse_rules(&f.privacy_rules)?;
    p.schedule = parse_schedule(&f.schedule)?;
    save_policy(&s, a, &p).await?;
    Ok(Redirect::to("/admin/policy?saved=1").into_response())
}

async fn policy_api(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    Ok(Json(current_policy(&s, a.company).await?).into_response())
}

async fn policy_put(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Json(p): Json<Policy>,
) -> Result<Response, ApiError> {
    save_policy(&s, a, &p).await?;
    Ok(Json(p).into_response())
}

async fn keys_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    let keys: Vec<_> = s
        .store
        .company_keys(a.company)
        .await?
        .into_iter()
        .map(|k| (k.display_prefix, k.created_at_ms, k.expires_at_ms, k.revoked_at_ms))
        .collect();
    Ok(render("admin_keys.html", minijinja::context! { nav => "admin", keys => keys })?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct RotateForm {
    grace_days: i64,
}

async fn rotate(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Form(f): Form<RotateForm>,
) -> Result<Response, ApiError> {
    if !(0..=30).contains(&f.grace_days) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the old key's grace is 0 to 30 days",
        ));
    }
    let key = provision::rotate_company_key(
        s.store.as_ref(),
        a.company,
        f.grace_days * DAY_MS,
        s.now_ms(),
    )
    .await
    .map_err(provision_error)?;
    audit(
        &s,
        a.company,
        &format!("admin:{}", a.user),
        "company.key_rotated",
        serde_json::json!({ "key_prefix": key.display_prefix(), "grace_days": f.grace_days }),
    )
    .await?;
    Ok(render("message.html", Message {
        nav: "admin",
        heading: "New company key".into(),
        lines: vec![format!("Agents installed with an older key keep working for {} days; new installations need this key.", f.grace_days)],
        secret: Some(key.expose().to_owned()),
        back: Some("/admin/keys".into()),
        ..Default::default()
    })?.into_response())
}

async fn tasks_page(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    let tasks: Vec<_> = s
        .store
        .tasks(a.company)
        .await?
        .into_iter()
        .map(|t| (t.project, t.name, t.tracked_secs))
        .collect();
    Ok(render("admin_tasks.html", minijinja::context! { nav => "admin", tasks => tasks })?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct TaskForm {
    project: String,
    task: String,
}

async fn add_task(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
    Form(f): Form<TaskForm>,
) -> Result<Response, ApiError> {
    let (project, task) = (f.project.trim(), f.task.trim());
    if project.is_empty() || task.is_empty() || project.len() > 200 || task.len() > 200 {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "project and task need 1–200 characters",
        ));
    }
    s.store.create_task(a.company, project, task, s.now_ms()).await?;
    Ok(Redirect::to("/admin/tasks").into_response())
}

async fn export(
    State(s): State<AppState>,
    AdminSession(a): AdminSession,
) -> Result<Response, ApiError> {
    let users: Vec<_> =
        s.store.employees(a.company).await?.into_iter().map(|e| (e.id, e.email)).collect();
    let now = s.now_ms();
    let csv = apps_csv(&s, a.company, &users, now - 30 * DAY_MS, now).await?;
    for (user, _) in &users {
        s.store.log_access(a.company, a.user, *user, "export (30 days of app time)", now).await?;
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"worktrail-apps.csv\""),
        ],
        csv,
    )
        .into_response())
}
