//! Test fixtures for keyward's integration tests, and nothing else: it runs the real
//! `keyward` binary as a child process on temporary data dirs ([`KeywardProcess`]), stands
//! up mock LLM providers on real loopback sockets with real TLS ([`MockUpstream`]), and
//! provides canary keys with raw-byte leak scans ([`canary`]); it never reaches the internet.

pub mod api_client;
pub mod canary;
pub mod keyward_process;
pub mod mock_upstream;

pub use api_client::{ApiClient, ApiResponse};
pub use canary::{
    assert_absent_in_dir, contains_bytes, find_in_dir, CANARY_ANTHROPIC, CANARY_OPENAI,
};
pub use keyward_process::KeywardProcess;
pub use mock_upstream::{Behavior, MockOptions, MockUpstream, RecordedRequest};
