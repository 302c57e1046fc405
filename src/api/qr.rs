//! QR codes: the desktop page's, and `GET /v1/auth/cross-device/qr/:id` for integrators who draw their own page (SVG, or PNG by `Accept` or a `.png` suffix).

use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use image::{ImageFormat, Luma};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;

use super::ApiError;
use super::extract::ClientIp;
use crate::limits::Operation;
use crate::session::SessionId;
use crate::state::AppState;

/// The side of an image, in pixels, when none is asked for.
pub const DEFAULT_SIZE: u32 = 264;
/// Sizes outside these are refused: smaller does not scan, larger only costs.
pub const SIZES: std::ops::RangeInclusive<u32> = 64..=1024;

fn code(url: &str) -> Option<QrCode> {
    QrCode::with_error_correction_level(url, EcLevel::M).ok()
}

/// An SVG of at least `size` pixels a side, dark on white.
pub fn svg(url: &str, size: u32) -> String {
    code(url)
        .map(|code| {
            code.render::<svg::Color<'_>>()
                .min_dimensions(size, size)
                .dark_color(svg::Color("#0b0d12"))
                .light_color(svg::Color("#ffffff"))
                .build()
        })
        .unwrap_or_default()
}

/// A PNG of at least `size` pixels a side (whole pixels per module, so it stays sharp).
pub fn png(url: &str, size: u32) -> Option<Vec<u8>> {
    let image = code(url)?
        .render::<Luma<u8>>()
        .min_dimensions(size, size)
        .build();
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).ok()?;
    Some(bytes.into_inner())
}

/// `?size=`, read as text so that a bad one gets the envelope rather than axum's plain rejection.
#[derive(Deserialize)]
pub struct Size {
    size: Option<String>,
}

/// The session's QR code while it can still be scanned. It holds the `qr_url`, so it tells
/// nothing the id does not already lead to; counted per client like a status request.
pub async fn image(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    query: Result<Query<Size>, axum::extract::rejection::QueryRejection>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, suffix_png) = match raw.strip_suffix(".png") {
        Some(id) => (id, true),
        None => (raw.strip_suffix(".svg").unwrap_or(&raw), false),
    };
    let id = SessionId::parse(id)?;
    let Query(Size { size }) = query.map_err(|e| ApiError::Validation(e.body_text()))?;
    let size = match size {
        None => DEFAULT_SIZE,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| SIZES.contains(n))
            .ok_or_else(|| {
                ApiError::Validation(format!(
                    "size must be a whole number of pixels from {} to {}",
                    SIZES.start(),
                    SIZES.end()
                ))
            })?,
    };
    let operation = Operation::Status {
        polling_token: None,
    };
    state.limiter.admit(operation, ip).await?;
    let url = state.bridge.qr_of(&id).await?;
    let wants_png = suffix_png || accepts_png(&headers);
    let (body, kind) = if wants_png {
        let png = png(&url, size).ok_or_else(|| {
            ApiError::Bridge(crate::store::StoreError::Corrupt("unrenderable QR".into()).into())
        })?;
        (png, "image/png")
    } else {
        (svg(&url, size).into_bytes(), "image/svg+xml")
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(response)
}

/// `Accept: image/png` preferred over SVG: named, and SVG not named before it.
fn accepts_png(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .find(|v| *v == "image/png" || *v == "image/svg+xml")
        == Some("image/png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_images_hold_the_address() {
        let url = "https://bridge.example/bridge/7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f";
        let svg = svg(url, 300);
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
        let png = png(url, 300).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoded = image::load_from_memory(&png).unwrap();
        assert!(decoded.width() >= 300 && decoded.width() < 400);
    }

    #[test]
    fn png_is_chosen_only_when_preferred() {
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT, HeaderValue::from_static(v));
            h
        };
        assert!(accepts_png(&accept("image/png")));
        assert!(accepts_png(&accept("image/png,image/svg+xml;q=0.9")));
        assert!(!accepts_png(&accept("image/svg+xml,image/png")));
        assert!(!accepts_png(&accept("image/avif,image/webp,*/*")));
        assert!(!accepts_png(&HeaderMap::new()));
    }
}
