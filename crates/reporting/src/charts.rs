//! `GET /charts`: a self-contained page (inline script drawing SVG, nothing from a CDN) that shows
//! code yield by code and payer, fetched from `/v1/reports/reimbursement`.
//!
//! The API key is read from the URL fragment (`/charts#key=clk_...&from=...&to=...`): browsers
//! never send the fragment to the server, and the script removes it from the address bar once
//! read. The page itself holds no data, so it needs no key; the content security policy lets it
//! talk to this origin only.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// The page.
pub const PAGE: &str = include_str!("charts.html");

/// Serves the page with a content security policy that allows its inline script and style and
/// requests to this origin, and nothing else.
pub async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
