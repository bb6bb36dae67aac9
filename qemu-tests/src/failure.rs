//! How the harness reports a failed expectation.

use std::fmt;

/// A failed expectation or a harness error, with a message that says what was expected,
/// what happened instead and where. Tests return it (`-> Result<(), Failure>`); its `Debug`
/// form is its message, so `cargo test` prints it readably.
pub struct Failure(String);

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<image::Error> for Failure {
    fn from(error: image::Error) -> Failure {
        Failure(error.to_string())
    }
}

/// Result of harness operations and tests.
pub type Outcome<T = ()> = Result<T, Failure>;

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(Failure(message()))
    }
}
