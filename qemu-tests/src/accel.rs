//! The suite's accelerator: chosen once per test process by `image::accel` (calibration, or
//! `MOAT_ACCEL`), and announced on the real stderr so every run says what it ran under.

use std::sync::OnceLock;

use image::accel::{choose, Accel, AccelRequest};

use crate::notice::notice;
use crate::{Failure, Outcome};

/// The accelerator every test runs under unless it asks for one.
pub fn harness_accel() -> Outcome<Accel> {
    static CHOICE: OnceLock<Result<Accel, String>> = OnceLock::new();
    CHOICE
        .get_or_init(|| match choose(AccelRequest::Auto) {
            Ok(choice) => {
                notice(&choice.to_string());
                Ok(choice.accel)
            }
            Err(error) => Err(error.to_string()),
        })
        .clone()
        .map_err(Failure::new)
}
