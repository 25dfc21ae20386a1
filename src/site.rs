//! Serving the built client in embedded mode: files from the build directory, and the
//! single-page app's `index.html` for every `/event/...` path (what the CloudFront
//! Function does on AWS). An event path whose id is not in canonical form (Crockford
//! base32 is case-insensitive: `/event/01abc...`) is redirected (308) to the canonical,
//! uppercase one, so that a guest has one URL per event (the page keeps its votes and
//! questions per URL). Any other unknown path gets the app's page with status 404 (the
//! client shows its not-found message); a missing file under `/assets` stays a bare 404.
//!
//! Every response carries the protective headers of [`SiteHeaders`]; the pages (the
//! `index.html` responses) also carry a strict Content-Security-Policy and
//! `Referrer-Policy: no-referrer` (the host page's URL holds the host secret). On AWS the
//! CloudFront distribution sends the same headers (`infra/template.yaml`; the contract test
//! checks that its policy is [`content_security_policy`]'s for `client/index.html`).

use std::path::Path;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Redirect};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The entry page changes in place on deploy, so browsers must revalidate it; the assets
/// have content hashes in their names and never change.
const INDEX_CACHE_CONTROL: &str = "no-cache";
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// `Strict-Transport-Security` when the site is served over HTTPS (`--secure-cookies`):
/// one year, this host only (subdomains may be someone else's).
pub const HSTS: &str = "max-age=31536000";
/// What API responses may do if a browser ever renders one: nothing.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The protective headers of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteHeaders {
    /// Send `Strict-Transport-Security` (the site is served over HTTPS).
    pub hsts: bool,
    /// The `frame-ancestors` sources allowed to embed the pages (e.g. the presenter view in
    /// a slide deck); empty: none may (`frame-ancestors 'none'` and `X-Frame-Options: DENY`).
    pub frame_ancestors: Vec<FrameAncestor>,
}

/// One CSP source allowed to frame the pages: `'self'`, `*`, or an origin such as
/// `https://slides.example` (scheme, host and optional port; a leading `*.` in the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAncestor(String);

impl std::str::FromStr for FrameAncestor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let origin_ok = || {
            let Some((scheme, rest)) = s.split_once("://") else { return false };
            let host = rest.strip_prefix("*.").unwrap_or(rest);
            matches!(scheme, "https" | "http")
                && !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        };
        if s == "'self'" || s == "self" {
            Ok(Self("'self'".into()))
        } else if s == "*" || origin_ok() {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("{s:?} is not a frame source: use an origin like https://slides.example, 'self' or *"))
        }
    }
}

/// The Content-Security-Policy of the pages: scripts, styles and everything else from this
/// origin only, no inline script except the ones whose hashes are given (the built
/// `index.html`'s theme script, which must run before first paint), images also as `data:`
/// URLs (the QR code), and no plugins, `<base>` or foreign form targets. Styles need no
/// `'unsafe-inline'`: the build puts all CSS in a file, and the components set styles only
/// through the CSSOM (`element.style`), which CSP does not govern.
pub fn content_security_policy(script_hashes: &[String], frame_ancestors: &[FrameAncestor]) -> String {
    let scripts: Vec<String> =
        std::iter::once("'self'".to_owned()).chain(script_hashes.iter().map(|h| format!("'{h}'"))).collect();
    let frames = if frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        frame_ancestors.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(" ")
    };
    format!(
        "default-src 'self'; script-src {}; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {frames}",
        scripts.join(" ")
    )
}

/// The CSP hash sources (`sha256-BASE64`) of every inline `<script>` (one without a `src`)
/// in `html`, in order: what the browser hashes is the exact text between the tags.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else { break };
        let tag = &after[..tag_end];
        let body = &after[tag_end + 1..];
        let Some(body_end) = body.find("</script") else { break };
        if !tag.contains(" src=") {
            let digest = Sha256::digest(&body.as_bytes()[..body_end]);
            hashes.push(format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        rest = &body[body_end..];
    }
    hashes
}

/// The headers every response of this process carries (pages, assets and the API).
pub fn common_headers(headers: &SiteHeaders) -> Vec<(HeaderName, HeaderValue)> {
    let mut all = vec![(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"))];
    if headers.hsts {
        all.push((header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS)));
    }
    all
}

/// The headers of a page (an `index.html` response), beyond [`common_headers`].
pub fn page_headers(headers: &SiteHeaders, script_hashes: &[String]) -> Vec<(HeaderName, HeaderValue)> {
    let csp = content_security_policy(script_hashes, &headers.frame_ancestors);
    // Every part is ASCII from this file, hashes (base64) and validated origins.
    let csp = HeaderValue::try_from(csp).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    let mut page = vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if headers.frame_ancestors.is_empty() {
        page.push((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
    }
    page
}

/// The canonical form of an event page's path, when `path` is an event page whose id is a
/// valid event id written otherwise (lowercase letters): `/event/01abc…/secret` →
/// `/event/01ABC…/secret`. `None` when the path is canonical already, or not an event
/// page with a valid id (those are served as they are; the page says the event does not
/// exist). The query, if any, is kept.
pub fn canonical_event_path(uri: &Uri) -> Option<String> {
    let rest = uri.path().strip_prefix("/event/")?;
    let (eid, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let canonical = eid.parse::<ledger::EventId>().ok()?.to_string();
    if canonical == eid {
        return None;
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("/event/{canonical}{tail}{query}"))
}

pub fn router(dir: &Path, headers: &SiteHeaders) -> Router {
    let index = dir.join("index.html");
    let hashes = match std::fs::read_to_string(&index) {
        Ok(html) => inline_script_hashes(&html),
        Err(error) => {
            tracing::warn!(%error, file = %index.display(), "cannot read the entry page to hash its inline scripts");
            Vec::new()
        }
    };
    let page = page_headers(headers, &hashes);
    let common = common_headers(headers);
    let with = |router: Router, set: &[(HeaderName, HeaderValue)]| {
        set.iter()
            .fold(router, |r, (name, value)| r.layer(SetResponseHeaderLayer::overriding(name.clone(), value.clone())))
    };
    let no_cache =
        SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static(INDEX_CACHE_CONTROL));
    let immutable =
        SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE_CONTROL));
    let event_page = {
        let index = ServeFile::new(&index);
        move |request: Request| {
            let index = index.clone();
            async move {
                match canonical_event_path(request.uri()) {
                    Some(to) => Redirect::permanent(&to).into_response(),
                    None => match index.oneshot(request).await {
                        Ok(response) => response.into_response(),
                        Err(never) => match never {},
                    },
                }
            }
        }
    };
    let pages = Router::new()
        .route("/event/{*rest}", axum::routing::get(event_page.clone()).head(event_page))
        .route_service("/", ServeFile::new(&index))
        .route_service("/index.html", ServeFile::new(&index))
        .layer(no_cache.clone());
    // What an unknown path gets: the entry page (a page, with the page headers), status 404.
    let not_found = with(Router::new().fallback_service(ServeFile::new(&index)).layer(no_cache), &page);
    let files = Router::new()
        .nest_service("/assets", ServiceBuilder::new().layer(immutable).service(ServeDir::new(dir.join("assets"))))
        .fallback_service(ServeDir::new(dir).not_found_service(not_found));
    with(with(pages, &page).merge(files), &common)
}
