//! How every Lambda binary of the service logs, set up once at start: one JSON object per
//! line on stdout (CloudWatch Logs stores each line as an event and can query its fields),
//! without a timestamp (CloudWatch stamps every event itself), filtered by `RUST_LOG`
//! (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the process's log subscriber. Call first thing in `main`; a second call (or a
/// subscriber already installed) leaves the first in place.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).without_time().try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn info_is_logged_and_debug_is_not_by_default_and_a_second_init_is_harmless() {
        std::env::remove_var("RUST_LOG");
        super::init();
        assert!(tracing::enabled!(tracing::Level::INFO));
        assert!(!tracing::enabled!(tracing::Level::DEBUG));
        super::init();
    }
}
