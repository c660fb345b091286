//! CLI commands that talk to the control API.

pub mod admin;
pub mod secrets;
pub mod tenants;
pub mod tokens;
