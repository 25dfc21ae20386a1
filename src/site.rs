//! Serving the built client in embedded mode: files from the build directory, and the
//! single-page app's `index.html` for every `/event/...` path (what the CloudFront
//! Function does on AWS). Other unknown paths stay 404.

use std::path::Path;

use axum::http::{header, HeaderValue};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The entry page changes in place on deploy, so browsers must revalidate it; the assets
/// have content hashes in their names and never change.
const INDEX_CACHE_CONTROL: &str = "no-cache";
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

pub fn router(dir: &Path) -> Router {
    let index = dir.join("index.html");
    let no_cache = SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static(INDEX_CACHE_CONTROL));
    let immutable = SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE_CONTROL));
    Router::new()
        .route_service("/event/{*rest}", ServiceBuilder::new().layer(no_cache.clone()).service(ServeFile::new(&index)))
        .route_service("/", ServiceBuilder::new().layer(no_cache.clone()).service(ServeFile::new(&index)))
        .route_service("/index.html", ServiceBuilder::new().layer(no_cache).service(ServeFile::new(&index)))
        .nest_service("/assets", ServiceBuilder::new().layer(immutable).service(ServeDir::new(dir.join("assets"))))
        .fallback_service(ServeDir::new(dir))
}
