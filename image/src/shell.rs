//! Quoting for POSIX shells, so that printed command lines can be copied and pasted.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Quotes `word` for a POSIX shell; words made only of safe characters are left bare.
pub fn quote(word: &OsStr) -> String {
    let text = String::from_utf8_lossy(word.as_bytes());
    let is_safe = |c: char| c.is_ascii_alphanumeric() || "-_=+,./:@%^".contains(c);
    if !text.is_empty() && text.chars().all(is_safe) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Joins a program and its arguments into one copyable shell command line.
pub fn command_line<'a>(words: impl IntoIterator<Item = &'a OsStr>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_qemu_options_stay_unquoted() {
        let line =
            command_line(["-device", "virtio-net-pci,mac=52:54:00:12:34:00"].map(OsStr::new));
        assert_eq!(line, "-device virtio-net-pci,mac=52:54:00:12:34:00");
    }

    #[test]
    fn spaces_and_quotes_survive_a_round_trip_through_the_shell() {
        assert_eq!(
            quote(OsStr::new("moat.fault=page console=x y")),
            "'moat.fault=page console=x y'"
        );
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }
}
