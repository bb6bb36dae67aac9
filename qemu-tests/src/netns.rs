//! Opening sockets inside a test host's network namespace from the test process itself.
//!
//! A socket belongs to the network namespace of the thread that created it, for its whole
//! life. [`in_namespace`] runs a closure on a fresh thread that has joined the namespace
//! (setns(2) changes only the calling thread's namespace), so the in-process servers
//! ([`crate::web_server`], [`crate::dns_server`]) and the SYN flood sender
//! ([`crate::syn_flood`]) can create their sockets there and then use them from any thread.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::{Failure, Outcome};

/// Where `ip netns add` mounts the namespace files.
const NETNS_DIR: &str = "/run/netns";

/// Runs `work` on a thread inside network namespace `namespace` (made by `ip netns add`)
/// and returns its result.
pub fn in_namespace<T: Send>(
    namespace: &str,
    work: impl FnOnce() -> io::Result<T> + Send,
) -> Outcome<T> {
    let path = Path::new(NETNS_DIR).join(namespace);
    let joined = std::thread::scope(|scope| {
        scope
            .spawn(|| -> io::Result<T> {
                let file = File::open(&path)?;
                // SAFETY: setns(2) is given an open descriptor of a network namespace file
                // and CLONE_NEWNET; it only moves this thread, which was started for `work`
                // and ends after it, into that namespace. No memory is shared with the call.
                let status = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if status != 0 {
                    return Err(io::Error::last_os_error());
                }
                work()
            })
            .join()
    });
    match joined {
        Ok(result) => result
            .map_err(|error| Failure::new(format!("in network namespace {namespace}: {error}"))),
        Err(_) => Err(Failure::new(format!(
            "the thread working in network namespace {namespace} panicked"
        ))),
    }
}
