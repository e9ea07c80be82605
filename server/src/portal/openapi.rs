//! `/api/v1/openapi.json`, generated from the route registry so it lists every JSON route.

use axum::Json;
use serde_json::{Map, Value, json};

use super::{Access, routes};

/// The OpenAPI 3 document of the JSON API (`/api/v1/...`), agent API included.
pub async fn document() -> Json<Value> {
    let mut paths = Map::new();
    let mut add = |method: &str, path: &str, summary: &str, security: Value| {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        entry[method.to_lowercase()] = json!({
            "summary": summary,
            "parameters": params,
            "security": security,
            "responses": {
                "200": { "description": "OK" },
                "default": { "description": "An error", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
    };
    for r in routes().iter().filter(|r| r.path.starts_with("/api/")) {
        let security = match r.access {
            Access::Public => json!([]),
            _ => json!([{ "session": [] }]),
        };
        add(r.method, r.path, r.summary, security);
    }
    for (method, path, summary) in [
        ("POST", "/api/v1/agent/enroll", "Exchange the company key for a device token"),
        ("POST", "/api/v1/agent/batches", "Store a batch of records idempotently"),
        ("PUT", "/api/v1/agent/screenshots/{id}", "Upload a screenshot's JPEG bytes"),
        ("GET", "/api/v1/agent/policy", "The company's collection policy"),
        ("GET", "/api/v1/agent/tasks", "The company's open tasks, for the agent's task choice"),
        (
            "POST",
            "/api/v1/agent/signin-link",
            "A single-use, one-minute sign-in link for this device's employee",
        ),
    ] {
        add(method, path, summary, json!([{ "company_key": [], "device_token": [] }]));
    }
    Json(json!({
        "openapi": "3.0.3",
        "info": { "title": "Worktrail API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::session::COOKIE },
                "company_key": { "type": "apiKey", "in": "header", "name": "X-Company-Key" },
                "device_token": { "type": "http", "scheme": "bearer" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" } } }
            }
        }
    }))
}
