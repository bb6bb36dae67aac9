//! Messages that must reach the person running the tests even when libtest captures output:
//! the accelerator choice and skipped tests. They are written to the process's stderr
//! directly, which libtest does not capture (it captures only `print!`/`eprint!`).

use std::io::Write;

/// Writes one line to the real stderr, uncaptured.
pub fn notice(message: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "qemu-tests: {message}");
}

/// Whether this process runs as root (network namespaces and tap devices need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// For a test that needs root: `Ok(true)` when it can run. Otherwise it is skipped loudly
/// (a banner on the real stderr, `Ok(false)`), and under CI (`CI` set), where every test must
/// run, it fails instead.
pub fn require_root(test: &str) -> crate::Outcome<bool> {
    if is_root() {
        return Ok(true);
    }
    if std::env::var_os("CI").is_some() {
        return Err(crate::Failure::new(format!(
            "{test} needs root, and CI must run it: run the suite as root"
        )));
    }
    notice(&format!(
        "SKIPPED {test}: needs root (network namespaces, tap devices); run as root to include it"
    ));
    Ok(false)
}
