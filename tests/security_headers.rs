//! Protective headers through the whole embedded router (pages, assets, API), and
//! `/metrics` only for loopback clients on the main listener. Each request carries the
//! `ClientAddr` that `serve`'s accept loop inserts.

mod with_client;

use axum::http::{header, HeaderMap, StatusCode};
use wewerewondering::site::{self, FrameAncestor};

/// An entry page with an inline script (as the client's theme script) and a module script.
const INDEX: &str = "<!doctype html><html><head><script>console.log(1)</script>\
<script type=\"module\" crossorigin src=\"/assets/app.js\"></script></head><body></body></html>";
/// `sha256` of `console.log(1)`, base64, computed independently (Python's hashlib).
const INLINE_HASH: &str = "sha256-CihokcEcBW4atb/CW/XWsvWwbTjqwQlE9nj9ii5ww5M=";

use with_client::{send, App};

async fn app(secure: bool, frame_ancestors: Vec<FrameAncestor>) -> App {
    with_client::start(INDEX, |config| {
        config.service.cookie_secure = secure;
        config.service.frame_ancestors = frame_ancestors;
    })
    .await
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().expect("text"))
}

#[tokio::test]
async fn pages_assets_and_the_api_carry_the_protective_headers() {
    let App { router, app, _dir } = app(false, Vec::new()).await;
    let (_, created, body) = send(&router, "POST", "/api/event", Some("192.0.2.1")).await;
    let event: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let (eid, secret) = (event["id"].as_str().expect("id"), event["secret"].as_str().expect("secret"));

    for page in ["/".to_owned(), "/index.html".to_owned(), format!("/event/{eid}"), format!("/event/{eid}/{secret}")] {
        let (status, headers, body) = send(&router, "GET", &page, Some("192.0.2.1")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(body, INDEX, "{page}");
        let csp = header(&headers, header::CONTENT_SECURITY_POLICY).unwrap_or_else(|| panic!("{page}: no CSP"));
        assert!(csp.contains(&format!("script-src 'self' '{INLINE_HASH}';")), "{page}: {csp}");
        for directive in [
            "default-src 'self'",
            "style-src 'self';",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{page}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{page}: {csp}");
        assert_eq!(header(&headers, header::REFERRER_POLICY), Some("no-referrer"), "{page}");
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), Some("nosniff"), "{page}");
        assert_eq!(header(&headers, header::X_FRAME_OPTIONS), Some("DENY"), "{page}");
        assert_eq!(header(&headers, header::STRICT_TRANSPORT_SECURITY), None, "{page}: HSTS only over HTTPS");
    }
    for file in ["/assets/app.js", "/favicon.svg"] {
        let (status, headers, _) = send(&router, "GET", file, Some("192.0.2.1")).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), Some("nosniff"), "{file}");
    }
    let (status, headers, _) = send(&router, "GET", &format!("/api/event/{eid}/questions"), Some("192.0.2.1")).await;
    let api = [(StatusCode::OK, created), (status, headers)];
    let (refused, refused_headers, _) = send(&router, "POST", "/api/vote/nonsense/up", Some("192.0.2.1")).await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    for (status, headers) in api.into_iter().chain([(refused, refused_headers)]) {
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), Some("nosniff"), "{status}");
        assert_eq!(header(&headers, header::CONTENT_SECURITY_POLICY), Some(site::API_CSP), "{status}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn over_https_every_response_asks_for_https_and_framing_can_be_allowed() {
    let slides: FrameAncestor = "https://slides.example".parse().expect("an origin");
    let App { router, app, _dir } = app(true, vec![slides]).await;
    for uri in ["/", "/assets/app.js", "/api/event/01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
        let (_, headers, _) = send(&router, "GET", uri, Some("192.0.2.1")).await;
        assert_eq!(header(&headers, header::STRICT_TRANSPORT_SECURITY), Some(site::HSTS), "{uri}");
    }
    let (_, headers, _) = send(&router, "GET", "/event/01ARZ3NDEKTSV4RRFFQ69G5FAV", Some("192.0.2.1")).await;
    let csp = header(&headers, header::CONTENT_SECURITY_POLICY).expect("a CSP");
    assert!(csp.ends_with("frame-ancestors https://slides.example"), "{csp}");
    assert_eq!(header(&headers, header::X_FRAME_OPTIONS), None, "X-Frame-Options would forbid what the CSP allows");
    app.shutdown().await;
}

#[test]
fn only_origins_self_or_any_may_be_allowed_to_frame() {
    for ok in ["https://slides.example", "https://*.example.org:8443", "'self'", "*", "http://[::1]:3000"] {
        assert!(ok.parse::<FrameAncestor>().is_ok(), "{ok}");
    }
    for bad in ["", "slides.example", "javascript:alert(1)", "https://a.example; script-src *", "https://a b", "'none'"]
    {
        assert!(bad.parse::<FrameAncestor>().is_err(), "{bad:?} accepted");
    }
}

#[test]
fn inline_scripts_are_hashed_and_external_ones_are_not() {
    assert_eq!(site::inline_script_hashes(INDEX), vec![INLINE_HASH.to_owned()]);
    assert_eq!(site::inline_script_hashes("<p>no scripts</p>"), Vec::<String>::new());
}

#[tokio::test]
async fn metrics_answer_loopback_clients_only_on_the_main_listener() {
    let App { router, app, _dir } = app(false, Vec::new()).await;
    send(&router, "POST", "/api/event", Some("192.0.2.1")).await;
    for loopback in ["127.0.0.1", "127.0.0.2", "::1"] {
        let (status, _, body) = send(&router, "GET", "/metrics", Some(loopback)).await;
        assert_eq!(status, StatusCode::OK, "{loopback}");
        assert!(body.contains("http_requests_total"), "{body}");
    }
    for outside in [Some("192.0.2.1"), Some("10.0.0.1"), None] {
        let (status, headers, body) = send(&router, "GET", "/metrics", outside).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{outside:?}");
        assert!(body.contains("\"error\""), "{body}");
        assert_eq!(header(&headers, header::CACHE_CONTROL), Some("no-store"));
    }
    // The metrics listener's router serves whoever reaches its address.
    let (status, headers, _) =
        send(&wewerewondering::roles::metrics_router(), "GET", "/metrics", Some("192.0.2.1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, header::CONTENT_TYPE), Some("text/plain; version=0.0.4"));
    app.shutdown().await;
}
