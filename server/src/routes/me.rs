//! EMPLOYEE pages and JSON API: my day, my screenshots, who viewed my data, my export.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use worktrail_shared::{ErrorCode, RecordId};

use crate::auth::session::EmployeeSession;
use crate::domain::subscription::DAY_MS;
use crate::error::ApiError;
use crate::portal::admin::{apps_csv, person_day, timeline};
use crate::portal::{Access, Route, me, render, route};
use crate::routes::admin::screenshot_bytes;
use crate::state::AppState;

/// The employee's routes.
pub fn routes() -> Vec<Route> {
    use Access::Employee;
    vec![
        route("GET", "/me", Employee, "My day", get(day_page)),
        route(
            "GET",
            "/me/screenshots",
            Employee,
            "My screenshots of the last 7 days",
            get(shots_page),
        ),
        route("GET", "/me/screenshots/{id}", Employee, "One of my screenshots", get(shot)),
        route(
            "POST",
            "/me/screenshots/{id}/delete",
            Employee,
            "Delete one of my screenshots and its time (when allowed)",
            post(delete_shot),
        ),
        route("GET", "/me/access", Employee, "Who viewed my data", get(access_page)),
        route("GET", "/me/export.json", Employee, "All my data as JSON", get(export_json)),
        route("GET", "/me/export.csv", Employee, "My app time as CSV", get(export_csv)),
        route("GET", "/api/v1/me/day", Employee, "My day", get(day_api)),
        route("GET", "/api/v1/me/access", Employee, "Who viewed my data", get(access_api)),
    ]
}

#[derive(Debug, Default, Deserialize)]
struct DateQuery {
    date: Option<String>,
}

async fn day_page(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
    Query(q): Query<DateQuery>,
) -> Result<Response, ApiError> {
    let d = person_day(&s, e.company, e.user, q.date.as_deref()).await?;
    let svg = timeline(&d);
    Ok(render("me_day.html", minijinja::context! { nav => "me", d => d, timeline => svg, shots_base => "/me/screenshots" })?.into_response())
}

async fn day_api(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
    Query(q): Query<DateQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(person_day(&s, e.company, e.user, q.date.as_deref()).await?).into_response())
}

async fn shots_page(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
) -> Result<Response, ApiError> {
    let now = s.now_ms();
    let day = s.store.employee_day(e.company, e.user, now - 7 * DAY_MS, now + DAY_MS).await?;
    let policy = s
        .store
        .company(e.company)
        .await?
        .ok_or_else(|| ApiError::internal("company vanished"))?
        .policy;
    let shots: Vec<_> =
        day.screenshots.iter().map(|(id, at, up)| (id.to_string(), *at, *up)).collect();
    Ok(render("me_screenshots.html", minijinja::context! { nav => "me", shots => shots, can_delete => policy.employees_delete_screenshots })?.into_response())
}

async fn shot(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, bytes) = screenshot_bytes(&s, e.company, &id, |owner| owner == e.user).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response())
}

async fn delete_shot(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let company =
        s.store.company(e.company).await?.ok_or_else(|| ApiError::internal("company vanished"))?;
    if !company.policy.employees_delete_screenshots {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "your company's policy does not allow deleting screenshots",
        ));
    }
    let id: RecordId =
        id.parse().map_err(|_| ApiError::new(ErrorCode::NotFound, "no such screenshot"))?;
    let window = i64::from(company.policy.screenshots.interval_secs) * 1000;
    match s.store.delete_own_screenshot(e.company, e.user, id, window).await? {
        None => Err(ApiError::new(ErrorCode::NotFound, "no such screenshot")),
        Some(key) => {
            if let Some(key) = key {
                s.objects.delete(&key).await.map_err(ApiError::internal)?;
            }
            Ok(Redirect::to("/me/screenshots").into_response())
        }
    }
}

async fn access_page(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
) -> Result<Response, ApiError> {
    let log = s.store.access_log(e.company, e.user).await?;
    let rows: Vec<_> = log.into_iter().map(|r| (r.viewer, r.what, r.at_ms)).collect();
    Ok(render("me_access.html", minijinja::context! { nav => "me", log => rows })?.into_response())
}

async fn access_api(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
) -> Result<Response, ApiError> {
    Ok(Json(s.store.access_log(e.company, e.user).await?).into_response())
}

async fn export_json(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
) -> Result<Response, ApiError> {
    let data = me::export(&s, e.company, e.user).await?;
    Ok((
        [(header::CONTENT_DISPOSITION, "attachment; filename=\"my-worktrail-data.json\"")],
        Json(data),
    )
        .into_response())
}

async fn export_csv(
    State(s): State<AppState>,
    EmployeeSession(e): EmployeeSession,
) -> Result<Response, ApiError> {
    let email = s.store.user(e.company, e.user).await?.map(|u| u.email).unwrap_or_default();
    let csv = apps_csv(&s, e.company, &[(e.user, email)], 0, i64::MAX / 2).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"my-worktrail-apps.csv\""),
        ],
        csv,
    )
        .into_response())
}
