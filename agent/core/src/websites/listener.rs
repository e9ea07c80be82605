//! The loopback HTTP listener the browser extension reports to. A thin edge: every request passes
//! [`admit`] (loopback peer, loopback `Host` against DNS rebinding, an extension `Origin` — which
//! web pages cannot forge), then pairing or a paired token, then the report goes to [`Tabs`].
//!
//! `POST /v1/pair` → `{"token": …}` while a pairing window is open; `POST /v1/tab` with
//! `Authorization: Bearer <token>` and `{"tab": {"url": …, "title": …}}` or `{"tab": null}`.
//! There is no CORS: extensions reach it through their host permission; pages get nothing.

use super::Extensions;
use super::pairing::{PairError, origin_family};
use super::site::Family;
use super::tabs::Tab;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest report accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why a request was refused; the code is stable, for the extension's options page.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The caller is not on this machine.
    NotLoopback,
    /// The `Host` header names another host (a rebinding web page).
    BadHost,
    /// No extension `Origin` (a web page, or a program that is not a browser extension).
    BadOrigin,
    /// No pairing window is open.
    PairingClosed,
    /// No token, or not this origin's token.
    Unpaired,
    /// The body is not a report.
    BadRequest,
    /// The agent could not keep the pairing.
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::NotLoopback => {
                (StatusCode::FORBIDDEN, "not_loopback", "only this machine may call")
            }
            Self::BadHost => (StatusCode::FORBIDDEN, "bad_host", "the Host header is not loopback"),
            Self::BadOrigin => {
                (StatusCode::FORBIDDEN, "bad_origin", "only the browser extension may call")
            }
            Self::PairingClosed => (
                StatusCode::FORBIDDEN,
                "pairing_closed",
                "choose \"Pair browser\" in the Worktrail agent, then try again",
            ),
            Self::Unpaired => (
                StatusCode::UNAUTHORIZED,
                "unpaired",
                "this extension is not paired with the agent",
            ),
            Self::BadRequest => (StatusCode::BAD_REQUEST, "bad_request", "not a tab report"),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the agent could not save the pairing",
            ),
        };
        (status, axum::Json(serde_json::json!({ "code": code, "message": message })))
            .into_response()
    }
}

fn is_loopback_host(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else { return false };
    p.parse::<u16>().is_ok_and(|p| p == port) && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// The checks every request passes; returns the caller's origin and browser family.
pub fn admit(
    peer: SocketAddr,
    headers: &HeaderMap,
    port: u16,
) -> Result<(String, Family), Refusal> {
    if !peer.ip().is_loopback() {
        return Err(Refusal::NotLoopback);
    }
    let text = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    if !text(header::HOST).is_some_and(|h| is_loopback_host(h, port)) {
        return Err(Refusal::BadHost);
    }
    let origin = text(header::ORIGIN).ok_or(Refusal::BadOrigin)?;
    let family = origin_family(origin).ok_or(Refusal::BadOrigin)?;
    Ok((origin.to_owned(), family))
}

/// The listener's routes over `ext`; `port` is the port it serves on (checked in `Host`).
pub fn router(ext: Arc<Extensions>, port: u16) -> Router {
    Router::new()
        .route("/v1/pair", post(pair))
        .route("/v1/tab", post(tab))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state((ext, port))
}

type St = State<(Arc<Extensions>, u16)>;

async fn pair(
    State((ext, port)): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let (origin, _) = admit(peer, &headers, port)?;
    match ext.pairings.pair(&origin, ext.clock.now_ms()) {
        Ok(token) => {
            tracing::info!(origin, "browser extension paired");
            Ok(axum::Json(serde_json::json!({ "token": token.expose() })).into_response())
        }
        Err(PairError::Closed) => Err(Refusal::PairingClosed),
        Err(PairError::Io(e)) => {
            tracing::error!(error = %e, "cannot save the pairing");
            Err(Refusal::Internal)
        }
    }
}

#[derive(Deserialize)]
struct Report {
    tab: Option<ReportTab>,
}

#[derive(Deserialize)]
struct ReportTab {
    url: String,
    #[serde(default)]
    title: Option<String>,
}

async fn tab(
    State((ext, port)): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Refusal> {
    let (origin, family) = admit(peer, &headers, port)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Refusal::Unpaired)?;
    if !ext.pairings.check(&origin, token) {
        return Err(Refusal::Unpaired);
    }
    let report: Report = serde_json::from_slice(&body).map_err(|_| Refusal::BadRequest)?;
    let tab = report.tab.map(|t| Tab { url: t.url, title: t.title });
    ext.tabs.report(family, tab, ext.clock.now_ms());
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    const EXT: &str = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";

    #[test]
    fn only_loopback_callers_naming_loopback_from_an_extension_origin_are_admitted() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let ok = admit(local, &headers("127.0.0.1:4000", Some(EXT)), 4000).unwrap();
        assert_eq!(ok, (EXT.to_owned(), Family::Chromium));
        assert!(
            admit(local, &headers("localhost:4000", Some("moz-extension://u-1")), 4000).is_ok()
        );
        let remote: SocketAddr = "192.168.1.9:5000".parse().unwrap();
        assert_eq!(
            admit(remote, &headers("127.0.0.1:4000", Some(EXT)), 4000),
            Err(Refusal::NotLoopback)
        );
        assert_eq!(
            admit(local, &headers("evil.example:4000", Some(EXT)), 4000),
            Err(Refusal::BadHost)
        );
        assert_eq!(
            admit(local, &headers("127.0.0.1:4001", Some(EXT)), 4000),
            Err(Refusal::BadHost)
        );
        assert_eq!(admit(local, &headers("127.0.0.1:4000", None), 4000), Err(Refusal::BadOrigin));
        let page = headers("127.0.0.1:4000", Some("http://127.0.0.1:8080"));
        assert_eq!(admit(local, &page, 4000), Err(Refusal::BadOrigin));
    }
}
