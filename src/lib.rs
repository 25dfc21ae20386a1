//! The `wewerewondering` command's library: embedded-mode wiring and the operator tools,
//! kept apart from `main.rs` so tests drive exactly what the command runs.

pub mod demo;
pub mod dynamodb_backend;
pub mod embedded;
pub mod forensics;
pub mod http_server;
pub mod replay;
pub mod roles;
pub mod service;
pub mod site;
pub mod store;
pub mod transfer;
