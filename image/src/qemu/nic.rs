//! NICs: which QEMU network backend each virtio-net device is wired to, and its MAC address.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;

/// The kernel drives at most this many NICs (`nic0`..`nic7`).
pub const MAX_NICS: usize = 8;

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// The MAC given to `nic<index>` unless told otherwise: `52:54:00:12:34:<index>` (QEMU's
    /// locally administered prefix), so that the console shows which device became which NIC.
    pub fn for_nic(index: usize) -> MacAddress {
        MacAddress([0x52, 0x54, 0x00, 0x12, 0x34, index as u8])
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = Error;

    fn from_str(text: &str) -> Result<MacAddress, Error> {
        let invalid = || {
            Error::InvalidRequest(format!(
                "invalid MAC address {text:?}: use six hex bytes a:b:c:d:e:f"
            ))
        };
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(MacAddress(bytes))
    }
}

/// The host side of one NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicBackend {
    /// QEMU user networking (slirp): 10.0.2.0/24, gateway 10.0.2.2, no root needed.
    User,
    /// An existing tap device on the host.
    Tap {
        /// Interface name of the tap device.
        ifname: String,
    },
    /// An existing tap device opened without the virtio-net header (`vnet_hdr=off`): the
    /// NIC then gets no checksum or segmentation offloads, like a socket NIC, and the host
    /// checksums and segments everything it sends through the tap.
    PlainTap {
        /// Interface name of the tap device.
        ifname: String,
    },
    /// A tap device QEMU inherits already open (`fd=`), as libvirt passes them: whether it
    /// carries the virtio-net header QEMU reads from the descriptor itself.
    TapFd {
        /// The descriptor's number in QEMU (inherited: not close-on-exec).
        fd: i32,
    },
    /// A unix datagram socket pair: QEMU binds `local` and sends every frame to `remote`.
    /// The peer (a test, or another VM with the two paths swapped) binds `remote`.
    UnixDgram {
        /// Socket QEMU binds.
        local: PathBuf,
        /// Socket QEMU sends to.
        remote: PathBuf,
    },
}

impl NicBackend {
    /// The `-netdev` option value for the NIC with netdev id `id`.
    pub fn netdev(&self, id: &str) -> String {
        match self {
            NicBackend::User => format!("user,id={id}"),
            NicBackend::Tap { ifname } => {
                format!(
                    "tap,id={id},ifname={},script=no,downscript=no",
                    escape_option(ifname)
                )
            }
            NicBackend::PlainTap { ifname } => {
                format!(
                    "tap,id={id},ifname={},script=no,downscript=no,vnet_hdr=off",
                    escape_option(ifname)
                )
            }
            NicBackend::TapFd { fd } => format!("tap,id={id},fd={fd}"),
            NicBackend::UnixDgram { local, remote } => format!(
                "dgram,id={id},local.type=unix,local.path={},remote.type=unix,remote.path={}",
                escape_option(&local.to_string_lossy()),
                escape_option(&remote.to_string_lossy())
            ),
        }
    }
}

impl FromStr for NicBackend {
    type Err = Error;

    /// Parses `user`, `tap:IFNAME`, `plain-tap:IFNAME` or `dgram:LOCAL_SOCKET:REMOTE_SOCKET`.
    fn from_str(text: &str) -> Result<NicBackend, Error> {
        let invalid = || {
            Error::InvalidRequest(format!(
                "invalid NIC {text:?}: use `user`, `tap:IFNAME`, `plain-tap:IFNAME` or `dgram:LOCAL_SOCKET:REMOTE_SOCKET`"
            ))
        };
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        match kind {
            "user" if rest.is_empty() => Ok(NicBackend::User),
            "tap" if !rest.is_empty() && !rest.contains(':') => Ok(NicBackend::Tap {
                ifname: rest.to_string(),
            }),
            "plain-tap" if !rest.is_empty() && !rest.contains(':') => Ok(NicBackend::PlainTap {
                ifname: rest.to_string(),
            }),
            "dgram" => match rest.split_once(':') {
                Some((local, remote))
                    if !local.is_empty() && !remote.is_empty() && !remote.contains(':') =>
                {
                    Ok(NicBackend::UnixDgram {
                        local: local.into(),
                        remote: remote.into(),
                    })
                }
                _ => Err(invalid()),
            },
            _ => Err(invalid()),
        }
    }
}

/// One virtio-net NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// Where its frames go on the host.
    pub backend: NicBackend,
    /// Its MAC address.
    pub mac: MacAddress,
}

impl Nic {
    /// `nic<index>` with the default MAC for that index.
    pub fn new(index: usize, backend: NicBackend) -> Nic {
        Nic {
            backend,
            mac: MacAddress::for_nic(index),
        }
    }
}

/// Doubles commas, which QEMU's option syntax uses as separators.
pub fn escape_option(value: &str) -> String {
    value.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_macs_carry_the_nic_index() {
        assert_eq!(MacAddress::for_nic(0).to_string(), "52:54:00:12:34:00");
        assert_eq!(MacAddress::for_nic(7).to_string(), "52:54:00:12:34:07");
    }

    #[test]
    fn mac_addresses_parse_and_reject_garbage() {
        assert_eq!(
            "52:54:00:ab:CD:0f".parse::<MacAddress>().unwrap().0,
            [0x52, 0x54, 0, 0xab, 0xcd, 0x0f]
        );
        for bad in [
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:0f:00",
            "5:54:00:ab:cd:0f",
            "zz:54:00:ab:cd:0f",
            "",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nic_specs_parse_into_backends() {
        assert_eq!("user".parse::<NicBackend>().unwrap(), NicBackend::User);
        assert_eq!(
            "tap:moat0".parse::<NicBackend>().unwrap(),
            NicBackend::Tap {
                ifname: "moat0".into()
            }
        );
        assert_eq!(
            "plain-tap:moat0".parse::<NicBackend>().unwrap(),
            NicBackend::PlainTap {
                ifname: "moat0".into()
            }
        );
        assert!(NicBackend::PlainTap {
            ifname: "moat0".into()
        }
        .netdev("nic1")
        .ends_with(",vnet_hdr=off"));
        assert_eq!(
            NicBackend::TapFd { fd: 7 }.netdev("nic2"),
            "tap,id=nic2,fd=7"
        );
        assert_eq!(
            "dgram:/tmp/a.sock:/tmp/b.sock"
                .parse::<NicBackend>()
                .unwrap(),
            NicBackend::UnixDgram {
                local: "/tmp/a.sock".into(),
                remote: "/tmp/b.sock".into()
            }
        );
        for bad in [
            "",
            "tap",
            "tap:",
            "dgram:/a",
            "dgram::/b",
            "user:x",
            "vde:x",
            "dgram:/a:/b:/c",
        ] {
            let error = bad.parse::<NicBackend>().unwrap_err().to_string();
            assert!(error.contains("tap:IFNAME"), "{bad}: {error}");
        }
    }

    #[test]
    fn commas_in_socket_paths_are_escaped_for_qemu() {
        let backend = NicBackend::UnixDgram {
            local: "/tmp/a,b".into(),
            remote: "/tmp/c".into(),
        };
        assert_eq!(
            backend.netdev("nic1"),
            "dgram,id=nic1,local.type=unix,local.path=/tmp/a,,b,remote.type=unix,remote.path=/tmp/c"
        );
    }
}
