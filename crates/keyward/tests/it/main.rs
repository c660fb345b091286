//! keyward's integration tests: one test binary (one link on a 2-core machine), one module per
//! area. Every test runs the real `keyward` binary on a temp data dir over real HTTP.

mod audit;
mod canary;
mod cli;
mod concurrency;
mod durability;
mod gateway;
mod gateway_audit;
mod gateway_custom;
mod gateway_faults;
mod gateway_sdk;
mod master_key;
mod secrets_api;
mod secrets_caps;
mod secrets_patch;
mod sessions;
mod startup;
mod support;
mod tampering;
mod tenants;
