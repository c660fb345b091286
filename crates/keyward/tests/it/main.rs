//! keyward's integration tests: one test binary (one link on a 2-core machine), one module per
//! area. Every test runs the real `keyward` binary on a temp data dir over real HTTP.

mod agents;
mod audit;
mod canary;
mod cli;
mod concurrency;
mod durability;
mod free_tier;
mod gateway;
mod gateway_audit;
mod gateway_custom;
mod gateway_faults;
mod gateway_sdk;
mod keyward_run;
mod limits;
mod limits_cli;
mod master_key;
mod proxy_attacks;
mod proxy_hosts;
mod proxy_mode;
mod secrets_api;
mod secrets_caps;
mod secrets_patch;
mod sessions;
mod startup;
mod static_mode;
mod support;
mod tampering;
mod tenants;
mod usage;
