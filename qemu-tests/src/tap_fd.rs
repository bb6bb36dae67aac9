//! Tap devices created inside a test host's network namespace and handed to QEMU as open
//! descriptors (`-netdev tap,fd=N`), as libvirt hands them: the host's side of the link
//! is up and addressed before QEMU starts, so a boot measurement counts QEMU and the guest,
//! not the moving and addressing of taps after QEMU has opened them by name.
//!
//! The tap is not persistent: it lives while a descriptor of it is open, so it goes away
//! with the QEMU that holds it.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::netns::in_namespace;
use crate::Outcome;

/// The clone device that makes a tap for the descriptor opening it.
const CLONE_DEVICE: &str = "/dev/net/tun";

/// Creates tap `name` inside network namespace `namespace`, with the virtio-net header
/// (QEMU then offers the guest checksum and segmentation offloads), and returns its open
/// descriptor (close-on-exec: see [`inheritable`]).
pub fn open_tap_in(namespace: &str, name: &str) -> Outcome<OwnedFd> {
    in_namespace(namespace, || {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(CLONE_DEVICE)
            .map_err(|error| {
                io::Error::new(error.kind(), format!("opening {CLONE_DEVICE}: {error}"))
            })?;
        // SAFETY: an all-zero ifreq is valid (a name of NULs, zero flags).
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes();
        if bytes.len() >= request.ifr_name.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tap name {name:?} is too long"),
            ));
        }
        for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
            *slot = *byte as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as _;
        // SAFETY: TUNSETIFF reads (and may update) the ifreq it is given, which lives on
        // this stack frame for the whole call; the descriptor is the clone device's.
        let status = unsafe { libc::ioctl(device.as_raw_fd(), libc::TUNSETIFF, &mut request) };
        if status != 0 {
            let error = io::Error::last_os_error();
            return Err(io::Error::new(
                error.kind(),
                format!("creating tap {name} ({CLONE_DEVICE}, TUNSETIFF): {error}"),
            ));
        }
        Ok(OwnedFd::from(device))
    })
}

/// Lets `fd` pass to the processes this one starts (clears close-on-exec), so that QEMU
/// can be given its number. Every process started while it is inheritable gets a copy:
/// close it (drop its owner) once QEMU runs.
pub fn inheritable(fd: &OwnedFd) -> Outcome<RawFd> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl(2) F_SETFD on a descriptor this process owns (it stays open: `fd`
    // is borrowed for the call); no memory is passed.
    let status = unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
    if status != 0 {
        return Err(crate::Failure::new(format!(
            "clearing close-on-exec on descriptor {raw}: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(raw)
}
