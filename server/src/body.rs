//! Reading request bodies within limits: the raw body is capped (a lying or missing
//! `Content-Length` changes nothing), then a gzip or zstd body is decompressed through a reader
//! that stops one byte past the decoded limit, so a decompression bomb costs at most the limit.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::io::Read;
use worktrail_shared::ErrorCode;

use crate::error::ApiError;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("body is larger than {limit} bytes"))
}

/// Reads the whole body, at most `max_raw` bytes as sent; refuses any content encoding.
pub async fn read_raw(
    headers: &HeaderMap,
    body: Body,
    max_raw: usize,
) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "bad Content-Length"))?;
        if len > max_raw as u64 {
            return Err(too_large(max_raw));
        }
    }
    match Limited::new(body, max_raw).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(max_raw)),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Reads the body (at most `max` bytes as sent) and decodes `Content-Encoding: gzip | zstd`
/// (at most `max` bytes decoded).
pub async fn read_decoded(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(encoding.as_str(), "" | "identity" | "gzip" | "zstd") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Encoding {encoding:?} is not supported; use gzip or zstd"),
        ));
    }
    let raw = read_raw(headers, body, max).await?;
    match encoding.as_str() {
        "gzip" => decode(flate2::read::GzDecoder::new(raw.as_slice()), "gzip", max),
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(raw.as_slice())
                .map_err(|e| ApiError::internal(format!("zstd decoder: {e}")))?;
            decode(decoder, "zstd", max)
        }
        _ => Ok(raw),
    }
}

fn decode(reader: impl Read, name: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    reader.take(max as u64 + 1).read_to_end(&mut out).map_err(|e| {
        ApiError::new(ErrorCode::InvalidRequest, format!("the body is not valid {name}: {e}"))
    })?;
    if out.len() > max {
        return Err(too_large(max));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(encoding: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(e) = encoding {
            h.insert(header::CONTENT_ENCODING, e.parse().unwrap());
        }
        h
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[tokio::test]
    async fn gzip_and_zstd_bodies_are_decoded() {
        let data = b"{\"hello\":1}".repeat(100);
        let got =
            read_decoded(&headers(Some("gzip")), Body::from(gzip(&data)), 4096).await.unwrap();
        assert_eq!(got, data);
        let z = zstd::encode_all(data.as_slice(), 3).unwrap();
        let got = read_decoded(&headers(Some("zstd")), Body::from(z), 4096).await.unwrap();
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn a_decompression_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 20_000);
        let err =
            read_decoded(&headers(Some("gzip")), Body::from(bomb), 64 * 1024).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    }

    #[tokio::test]
    async fn oversized_garbled_and_unknown_encodings_are_refused() {
        let err =
            read_decoded(&headers(None), Body::from(vec![1u8; 5000]), 4096).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        let err = read_decoded(&headers(Some("gzip")), Body::from("nope"), 4096).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let err = read_decoded(&headers(Some("br")), Body::from("x"), 4096).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnsupportedMediaType);
    }
}
