//! Log lines (drop log, stats line), captured per test thread.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LOG_LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct CapturingLogger;

impl log::Log for CapturingLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        LOG_LINES.with(|lines| lines.borrow_mut().push(record.args().to_string()));
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once per test binary).
pub fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&CapturingLogger).expect("no other logger in the pipeline tests");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The lines this test's appliances logged since the last call.
pub fn take_log_lines() -> Vec<String> {
    LOG_LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
}

/// The lines about the uplink (its DHCP lease, its gateway) logged since the last call
/// (other lines are dropped).
pub fn dhcp_log_lines() -> Vec<String> {
    take_log_lines()
        .into_iter()
        .filter(|line| line.contains(" dhcp: ") || line.contains(" gateway "))
        .collect()
}
