//! Cross-site request refusal and security headers for the portal.
//!
//! A state-changing request (anything but GET, HEAD, OPTIONS) is admitted only when the browser
//! says it came from this site: `Sec-Fetch-Site: same-origin` (or `none`, typed by the user), or,
//! for browsers that do not send that header, an `Origin` whose host is this request's `Host`.
//! Together with `SameSite=Strict` cookies this closes cross-site request forgery without tokens.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use worktrail_shared::ErrorCode;

use crate::error::ApiError;

/// True when the headers show a same-site request.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, rest)| rest) == Some(host),
        _ => false,
    }
}

/// Refuses cross-site state changes with `403 forbidden`.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(req.headers()) {
        return ApiError::new(
            ErrorCode::Forbidden,
            "cross-site request refused (Origin / Sec-Fetch-Site do not match this site)",
        )
        .into_response();
    }
    next.run(req).await
}

/// Adds the security headers to every response, and `Cache-Control: no-store` to everything
/// but static assets.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, "strict-transport-security", "max-age=31536000; includeSubDomains");
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    if !is_static {
        set(h, "cache-control", "no-store");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_site_requests_pass_and_cross_site_ones_do_not() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://a.test:8080"),
            ("host", "a.test:8080")
        ])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.test"), ("host", "a.test")])));
        assert!(!same_origin(&headers(&[("host", "a.test")])), "no evidence, no entry");
    }
}
