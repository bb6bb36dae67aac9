//! Names of host resources (socket directories, network namespaces, tap devices) carry the pid
//! of the test process that made them, so that what a killed test process left behind (its
//! drops never ran) can be recognised and removed by the next one.

/// `<prefix><pid>-<serial>` for this process.
pub fn owned_name(prefix: &str, serial: usize) -> String {
    format!("{prefix}{}-{serial}", std::process::id())
}

/// Whether `name` is `<prefix><pid>-<serial>` for a pid that no longer runs.
pub fn owner_is_dead(name: &str, prefix: &str) -> bool {
    let Some((pid, serial)) = name
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    let is_number = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    is_number(pid) && is_number(serial) && !std::path::Path::new("/proc").join(pid).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_dead_harness_processes_are_leftovers() {
        assert!(owner_is_dead("moat-999999999-0", "moat-"));
        assert!(!owner_is_dead(&owned_name("moat-", 0), "moat-"));
        assert!(!owner_is_dead("moat-uplink", "moat-"));
        assert!(!owner_is_dead("eth0", "mt"));
    }
}
