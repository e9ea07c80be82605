//! OWNER pages and JSON API. Handlers take an [`OwnerView`], which offers only company metadata
//! and rollups: an owner route cannot name a tracking-data method.

use axum::Json;
use axum::extract::{Form, Path};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use worktrail_shared::{CompanyId, ErrorCode};

use crate::error::ApiError;
use crate::portal::chart;
use crate::portal::owner::{NewCompanyForm, OwnerAction, OwnerView};
use crate::portal::{Access, Message, Route, render, route};

/// The owner's routes.
pub fn routes() -> Vec<Route> {
    use Access::Owner;
    vec![
        route(
            "GET",
            "/owner",
            Owner,
            "Dashboard: companies, trials ending, silent companies",
            get(dashboard_page),
        ),
        route("POST", "/owner/companies", Owner, "Create a company (form)", post(create_page)),
        route(
            "GET",
            "/owner/companies/{company}",
            Owner,
            "One company: usage, history, keys, audit",
            get(company_page),
        ),
        route(
            "POST",
            "/owner/companies/{company}/{action}",
            Owner,
            "plan, extend-trial, activate, suspend, reactivate, rotate-key or cancel (form)",
            post(action_page),
        ),
        route(
            "GET",
            "/owner/reports",
            Owner,
            "Platform usage, plan mix, trial conversion",
            get(reports_page),
        ),
        route(
            "GET",
            "/owner/reports.csv",
            Owner,
            "Platform usage per day as CSV",
            get(reports_csv),
        ),
        route("GET", "/api/v1/owner/dashboard", Owner, "Dashboard data", get(dashboard_api)),
        route(
            "POST",
            "/api/v1/owner/companies",
            Owner,
            "Create a company; answers its key once",
            post(create_api),
        ),
        route(
            "GET",
            "/api/v1/owner/companies/{company}",
            Owner,
            "One company's data",
            get(company_api),
        ),
        route(
            "POST",
            "/api/v1/owner/companies/{company}/actions",
            Owner,
            "Apply an action ({\"action\": ...})",
            post(action_api),
        ),
        route("GET", "/api/v1/owner/reports", Owner, "Report data", get(reports_api)),
    ]
}

fn company_id(raw: &str) -> Result<CompanyId, ApiError> {
    raw.parse().map_err(|_| ApiError::new(ErrorCode::NotFound, "no such company"))
}

async fn dashboard_page(view: OwnerView) -> Result<Response, ApiError> {
    let data = view.dashboard().await?;
    Ok(render("owner_dashboard.html", minijinja::context! { nav => "owner", d => data })?
        .into_response())
}

async fn dashboard_api(view: OwnerView) -> Result<Response, ApiError> {
    Ok(Json(view.dashboard().await?).into_response())
}

async fn company_page(view: OwnerView, Path(id): Path<String>) -> Result<Response, ApiError> {
    let detail = view.company(company_id(&id)?).await?;
    let series: Vec<(String, f64)> =
        detail.days.iter().map(|d| (d.day.clone(), d.tracked_secs as f64 / 3600.0)).collect();
    let chart = chart::bars(&series, "h");
    Ok(render(
        "owner_company.html",
        minijinja::context! { nav => "owner", d => detail, chart => chart },
    )?
    .into_response())
}

async fn company_api(view: OwnerView, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(view.company(company_id(&id)?).await?).into_response())
}

async fn reports_page(view: OwnerView) -> Result<Response, ApiError> {
    let r = view.reports().await?;
    let series: Vec<(String, f64)> =
        r.days.iter().map(|(day, _, secs, _)| (day.clone(), *secs as f64 / 3600.0)).collect();
    let chart = chart::bars(&series, "h");
    Ok(render(
        "owner_reports.html",
        minijinja::context! { nav => "owner", r => r, chart => chart },
    )?
    .into_response())
}

async fn reports_api(view: OwnerView) -> Result<Response, ApiError> {
    Ok(Json(view.reports().await?).into_response())
}

async fn reports_csv(view: OwnerView) -> Result<Response, ApiError> {
    let csv = view.report_csv().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"worktrail-usage.csv\""),
        ],
        csv,
    )
        .into_response())
}

async fn create_page(
    view: OwnerView,
    Form(form): Form<NewCompanyForm>,
) -> Result<Response, ApiError> {
    let created = view.create_company(&form).await?;
    let message = Message {
        nav: "owner",
        heading: format!("Company {} created", form.name.trim()),
        lines: vec!["Give the company key to the company's admin for installing the agent.".into()],
        secret: Some(created.company_key),
        link: created.invitation_path,
        back: Some(format!("/owner/companies/{}", created.company_id)),
    };
    Ok(render("message.html", message)?.into_response())
}

async fn create_api(
    view: OwnerView,
    Json(form): Json<NewCompanyForm>,
) -> Result<Response, ApiError> {
    Ok(Json(view.create_company(&form).await?).into_response())
}

/// Fields any action form may carry.
#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    plan: Option<String>,
    days: Option<i64>,
    grace_days: Option<i64>,
}

fn parse_action(verb: &str, f: ActionForm) -> Result<OwnerAction, ApiError> {
    let missing =
        |what: &str| ApiError::new(ErrorCode::InvalidRequest, format!("{what} is required"));
    Ok(match verb {
        "plan" => OwnerAction::ChangePlan { plan: f.plan.ok_or_else(|| missing("plan"))? },
        "extend-trial" => OwnerAction::ExtendTrial { days: f.days.ok_or_else(|| missing("days"))? },
        "activate" => OwnerAction::Activate,
        "suspend" => OwnerAction::Suspend,
        "reactivate" => OwnerAction::Reactivate,
        "rotate-key" => OwnerAction::RotateKey { grace_days: f.grace_days.unwrap_or(7) },
        "cancel" => OwnerAction::Cancel,
        _ => return Err(ApiError::new(ErrorCode::NotFound, "no such action")),
    })
}

async fn action_page(
    view: OwnerView,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    let company = company_id(&id)?;
    let action = parse_action(&verb, form)?;
    match view.act(company, &action).await? {
        Some(key) => Ok(render(
            "message.html",
            Message {
                nav: "owner",
                heading: "New company key".into(),
                lines: vec!["The previous keys keep working until their grace ends.".into()],
                secret: Some(key),
                back: Some(format!("/owner/companies/{company}")),
                ..Default::default()
            },
        )?
        .into_response()),
        None => Ok(Redirect::to(&format!("/owner/companies/{company}")).into_response()),
    }
}

async fn action_api(
    view: OwnerView,
    Path(id): Path<String>,
    Json(action): Json<OwnerAction>,
) -> Result<Response, ApiError> {
    let key = view.act(company_id(&id)?, &action).await?;
    Ok(Json(serde_json::json!({ "ok": true, "company_key": key })).into_response())
}
