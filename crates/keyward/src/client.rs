//! The CLI's HTTP client for the control API.
