//! The client against a stub server on port 0: no redirects followed, secrets marked sensitive,
//! and which failures count as retryable.

use super::*;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn creds() -> Credentials {
    let fill = |b: &mut [u8]| b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
    Credentials { key: CompanyKey::generate(fill), token: DeviceToken::generate(fill) }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_secrets_go_nowhere_else() {
    let hits = Arc::new(AtomicUsize::new(0));
    let elsewhere_hits = hits.clone();
    let app = Router::new()
        .route(
            "/api/v1/agent/batches",
            post(|| async {
                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/elsewhere")]).into_response()
            }),
        )
        .route(
            "/elsewhere",
            any(move || {
                elsewhere_hits.fetch_add(1, Ordering::SeqCst);
                async { StatusCode::OK }
            }),
        );
    let base = serve(app).await;
    let client = SyncClient::new(&base).unwrap();
    let err = client.send_batch(&creds(), b"{}").await.unwrap_err();
    assert!(matches!(err, SyncError::Server { status: 307, .. }), "{err:?}");
    assert!(!err.is_retryable() && !err.blocks_agent());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect target was contacted");
}

#[tokio::test]
async fn error_bodies_become_typed_errors_with_retry_after() {
    let app = Router::new().route(
        "/api/v1/agent/policy",
        any(|| async {
            let body = r#"{"code":"rate_limited","message":"slow down"}"#;
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")], body).into_response()
        }),
    );
    let base = serve(app).await;
    let err = SyncClient::new(&base).unwrap().policy(&creds()).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_retryable());
}

#[test]
fn the_company_key_and_token_headers_are_marked_sensitive() {
    let h = auth_headers(&creds()).unwrap();
    assert!(h[COMPANY_KEY_HEADER].is_sensitive());
    assert!(h[header::AUTHORIZATION].is_sensitive());
    assert!(!format!("{h:?}").contains(creds().key.expose()));
}

#[test]
fn only_network_errors_408_429_and_5xx_are_retried() {
    let server = |status: u16| SyncError::Server {
        status,
        code: ErrorCode::Unknown,
        message: String::new(),
        retry_after: None,
    };
    for status in [408, 429, 500, 502, 503, 504] {
        assert!(server(status).is_retryable(), "{status}");
    }
    for status in [400, 401, 402, 403, 404, 409, 413, 415, 422] {
        assert!(!server(status).is_retryable(), "{status}");
    }
    assert!(SyncError::Network("reset".into()).is_retryable());
    assert!(!SyncError::Protocol("junk".into()).is_retryable());
    assert!(server(402).blocks_agent() && !server(429).blocks_agent());
}

/// A server that answers every connection with `reply` and closes.
async fn raw(reply: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_answer_cut_short_is_a_network_error_and_a_whole_bad_answer_is_not() {
    let cut = raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"batch_id\":").await;
    let err = SyncClient::new(&cut).unwrap().policy(&creds()).await.unwrap_err();
    assert!(matches!(err, SyncError::Network(_)) && err.is_retryable(), "{err:?}");
    let junk = raw(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nnot json").await;
    let err = SyncClient::new(&junk).unwrap().policy(&creds()).await.unwrap_err();
    assert!(matches!(err, SyncError::Protocol(_)) && !err.is_retryable(), "{err:?}");
}
