//! Domain types of keyward with no I/O: validated names, the caps of the Secrets API, and the
//! stable error codes every edge (HTTP, CLI) reports. Parsing happens here once, so the rest of
//! the code handles values that are already known to be valid ("parse, don't validate").

pub mod caps;
pub mod dotenv;
pub mod error;
pub mod names;
pub mod providers;

pub use error::ErrorCode;
pub use names::{KeyName, Name, NameError};
