//! The web portal: templates (from `ui/portal`, compiled into the binary), the route registry
//! that both builds the router and documents it (OpenAPI), and the views each role may see.
//!
//! Every portal route is declared once as a [`Route`] with the roles it admits; the router is
//! built only from that list, so the route-walking test and `/api/v1/openapi.json` can never
//! miss one.

pub mod admin;
pub mod chart;
pub mod me;
pub mod openapi;
pub mod owner;

use axum::response::Html;
use axum::routing::MethodRouter;
use minijinja::Environment;
use serde::Serialize;
use std::sync::OnceLock;

use crate::error::ApiError;
use crate::state::AppState;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Access {
    /// Anyone (sign-in, invitations, assets).
    Public,
    /// The platform operator.
    Owner,
    /// A company's admin.
    Admin,
    /// An employee.
    Employee,
}

/// One route of the portal.
#[derive(Debug)]
pub struct Route {
    /// HTTP method (`GET`, `POST`).
    pub method: &'static str,
    /// Path with `{param}` placeholders.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line on what it does.
    pub summary: &'static str,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

/// Shorthand for a [`Route`].
pub fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> Route {
    Route { method, path, access, summary, handler }
}

/// Every portal route: pages, form actions and the JSON API.
pub fn routes() -> Vec<Route> {
    let mut all = crate::routes::login::routes();
    all.extend(crate::routes::signin::routes());
    all.extend(crate::routes::owner::routes());
    all.extend(crate::routes::admin::routes());
    all.extend(crate::routes::me::routes());
    all.push(route(
        "GET",
        "/api/v1/openapi.json",
        Access::Public,
        "This document",
        axum::routing::get(openapi::document),
    ));
    all
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../ui/portal/templates/base.html")),
    ("login.html", include_str!("../../../ui/portal/templates/login.html")),
    ("message.html", include_str!("../../../ui/portal/templates/message.html")),
    ("invite.html", include_str!("../../../ui/portal/templates/invite.html")),
    ("owner_dashboard.html", include_str!("../../../ui/portal/templates/owner_dashboard.html")),
    ("owner_company.html", include_str!("../../../ui/portal/templates/owner_company.html")),
    ("owner_reports.html", include_str!("../../../ui/portal/templates/owner_reports.html")),
    ("admin_overview.html", include_str!("../../../ui/portal/templates/admin_overview.html")),
    ("admin_employees.html", include_str!("../../../ui/portal/templates/admin_employees.html")),
    ("admin_day.html", include_str!("../../../ui/portal/templates/admin_day.html")),
    ("admin_devices.html", include_str!("../../../ui/portal/templates/admin_devices.html")),
    ("admin_policy.html", include_str!("../../../ui/portal/templates/admin_policy.html")),
    ("admin_keys.html", include_str!("../../../ui/portal/templates/admin_keys.html")),
    ("admin_tasks.html", include_str!("../../../ui/portal/templates/admin_tasks.html")),
    ("me_day.html", include_str!("../../../ui/portal/templates/me_day.html")),
    ("day_body.html", include_str!("../../../ui/portal/templates/day_body.html")),
    ("me_screenshots.html", include_str!("../../../ui/portal/templates/me_screenshots.html")),
    ("me_access.html", include_str!("../../../ui/portal/templates/me_access.html")),
];

/// The stylesheet.
pub const CSS: &str = include_str!("../../../ui/portal/static/portal.css");

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("portal templates parse");
        }
        env.add_filter("hours", |secs: i64| format!("{:.1} h", secs as f64 / 3600.0));
        env.add_filter("time", |ms: Option<i64>| {
            ms.map_or_else(|| "never".to_owned(), format_time)
        });
        env.add_filter("clock", |ms: i64| format_clock(ms));
        env
    })
}

/// `2026-11-27 10:05 UTC`.
pub fn format_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// `10:05` (UTC).
pub fn format_clock(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%H:%M").to_string())
        .unwrap_or_default()
}

/// Renders a page. Templates escape every value (HTML auto-escaping by file name).
pub fn render(name: &str, context: impl Serialize) -> Result<Html<String>, ApiError> {
    let template = environment().get_template(name).map_err(ApiError::internal)?;
    template.render(context).map(Html).map_err(ApiError::internal)
}

/// A page with one message (and optionally a secret shown once, or an invitation link).
#[derive(Debug, Default, Serialize)]
pub struct Message {
    /// Navigation set.
    pub nav: &'static str,
    /// Title.
    pub heading: String,
    /// Paragraphs.
    pub lines: Vec<String>,
    /// A secret shown once.
    pub secret: Option<String>,
    /// An invitation link.
    pub link: Option<String>,
    /// Where to go next.
    pub back: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_values_are_escaped() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
        let html = render(
            "message.html",
            Message { heading: "<script>x</script>".into(), ..Default::default() },
        )
        .unwrap()
        .0;
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>x"));
    }
}
