//! A `newc` cpio archive (the initramfs format), written deterministically: entries in path
//! order, every parent directory present, owner root, modification time 0, inode numbers in
//! order. The same entries always give the same bytes.

use std::collections::BTreeMap;

/// What one archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Directory,
    /// A regular file with its contents and permission bits (e.g. `0o755`).
    File {
        /// Contents.
        bytes: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link to `target`.
    Symlink(String),
}

/// An archive being assembled: paths (relative, `/`-separated, no leading `/`) to nodes.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    entries: BTreeMap<String, Node>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive::default()
    }

    /// Adds (or replaces) `path`, and every parent directory it lacks.
    pub fn insert(&mut self, path: &str, node: Node) {
        let path = path.trim_start_matches('/');
        for (slash, _) in path.match_indices('/') {
            self.entries
                .entry(path[..slash].to_string())
                .or_insert(Node::Directory);
        }
        self.entries.insert(path.to_string(), node);
    }

    /// Whether `path` is in the archive.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path.trim_start_matches('/'))
    }

    /// The archive's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, (path, node)) in self.entries.iter().enumerate() {
            let (mode, nlink, data): (u32, u32, &[u8]) = match node {
                Node::Directory => (0o040_755, 2, &[]),
                Node::File { bytes, mode } => (0o100_000 | (mode & 0o7777), 1, bytes),
                Node::Symlink(target) => (0o120_777, 1, target.as_bytes()),
            };
            write_entry(&mut out, index as u32 + 1, mode, nlink, path, data);
        }
        write_entry(&mut out, 0, 0, 1, "TRAILER!!!", &[]);
        out
    }
}

/// One `newc` header, name and data, each padded to four bytes.
fn write_entry(out: &mut Vec<u8>, inode: u32, mode: u32, nlink: u32, name: &str, data: &[u8]) {
    let fields = [
        inode,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad(out);
    out.extend_from_slice(data);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a newc archive back: (name, mode, data) per entry, without the trailer.
    fn entries(bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(&bytes[at..at + 6], b"070701", "magic at {at}");
            let field = |i: usize| {
                let start = at + 6 + i * 8;
                u32::from_str_radix(std::str::from_utf8(&bytes[start..start + 8]).unwrap(), 16)
                    .unwrap() as usize
            };
            let (mode, size, name_len) = (field(1), field(6), field(11));
            let name_start = at + 110;
            let name = std::str::from_utf8(&bytes[name_start..name_start + name_len - 1])
                .unwrap()
                .to_string();
            let data_start = (name_start + name_len).next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            at = (data_start + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                assert_eq!(at, bytes.len());
                return out;
            }
            out.push((name, mode as u32, data));
        }
    }

    #[test]
    fn files_links_and_their_parent_directories_are_archived_in_path_order() {
        let mut archive = Archive::new();
        archive.insert(
            "/usr/sbin/nft",
            Node::File {
                bytes: b"ELF".to_vec(),
                mode: 0o755,
            },
        );
        archive.insert("init", Node::Symlink("bin/busybox".into()));
        let read = entries(&archive.to_bytes());
        let names: Vec<&str> = read.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(names, ["init", "usr", "usr/sbin", "usr/sbin/nft"]);
        assert_eq!(read[0].1, 0o120_777);
        assert_eq!(read[0].2, b"bin/busybox");
        assert_eq!(read[1].1, 0o040_755);
        assert_eq!((read[3].1, read[3].2.as_slice()), (0o100_755, &b"ELF"[..]));
    }

    #[test]
    fn the_same_entries_give_the_same_bytes_whatever_the_insertion_order() {
        let file = |text: &str| Node::File {
            bytes: text.as_bytes().to_vec(),
            mode: 0o644,
        };
        let mut one = Archive::new();
        one.insert("etc/a", file("a"));
        one.insert("etc/b", file("bb"));
        let mut other = Archive::new();
        other.insert("etc/b", file("bb"));
        other.insert("etc/a", file("a"));
        assert_eq!(one.to_bytes(), other.to_bytes());
        assert!(one.contains("/etc/a") && !one.contains("etc/c"));
    }
}
