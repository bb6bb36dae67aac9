//! The virtio-net feature bits (virtio 1.2, 5.1.3) and which of them Moat accepts: every
//! decision is in [`accept`], one line per bit, and the result is printed at boot
//! (`moat.log=debug`) with the bits the device offered.

/// One feature bit and its name.
#[derive(Clone, Copy, Debug)]
pub struct Bit {
    /// The bit.
    pub mask: u64,
    /// Its name, as the specification writes it (lower case, without `VIRTIO_NET_F_`).
    pub name: &'static str,
}

const fn bit(index: u32, name: &'static str) -> Bit {
    Bit {
        mask: 1 << index,
        name,
    }
}

/// The device completes partial checksums of frames the driver sends.
pub const CSUM: Bit = bit(0, "csum");
/// The driver takes frames with partial checksums.
pub const GUEST_CSUM: Bit = bit(1, "guest_csum");
/// The device reports its MTU.
pub const MTU: Bit = bit(3, "mtu");
/// The device has a MAC address.
pub const MAC: Bit = bit(5, "mac");
/// The driver takes TCP/IPv4 super-frames.
pub const GUEST_TSO4: Bit = bit(7, "guest_tso4");
/// The driver takes TCP/IPv6 super-frames.
pub const GUEST_TSO6: Bit = bit(8, "guest_tso6");
/// The driver takes super-frames with ECN (CWR) set.
pub const GUEST_ECN: Bit = bit(9, "guest_ecn");
/// The driver takes UDP super-frames (UFO).
pub const GUEST_UFO: Bit = bit(10, "guest_ufo");
/// The device segments TCP/IPv4 super-frames the driver sends.
pub const HOST_TSO4: Bit = bit(11, "host_tso4");
/// The device segments TCP/IPv6 super-frames.
pub const HOST_TSO6: Bit = bit(12, "host_tso6");
/// The device segments super-frames with ECN set.
pub const HOST_ECN: Bit = bit(13, "host_ecn");
/// The device fragments UDP super-frames (UFO).
pub const HOST_UFO: Bit = bit(14, "host_ufo");
/// The device may spread a received frame over several buffers.
pub const MRG_RXBUF: Bit = bit(15, "mrg_rxbuf");
/// The device reports link status.
pub const STATUS: Bit = bit(16, "status");
/// A control queue.
pub const CTRL_VQ: Bit = bit(17, "ctrl_vq");
/// Indirect descriptors (virtio 1.2, 2.7.5.3).
pub const RING_INDIRECT_DESC: Bit = bit(28, "ring_indirect_desc");
/// `used_event` / `avail_event` notification suppression (virtio 1.2, 2.7.7).
pub const RING_EVENT_IDX: Bit = bit(29, "ring_event_idx");
/// A modern (virtio 1.0+) device.
pub const VERSION_1: Bit = bit(32, "version_1");
/// The driver takes UDP segmentation super-frames over IPv4 (USO, QEMU 8.2 and later).
pub const GUEST_USO4: Bit = bit(54, "guest_uso4");
/// ... over IPv6.
pub const GUEST_USO6: Bit = bit(55, "guest_uso6");
/// The device segments UDP super-frames (USO).
pub const HOST_USO: Bit = bit(56, "host_uso");

/// Every bit named in the debug line, in order.
pub const NAMED: [Bit; 29] = [
    CSUM,
    GUEST_CSUM,
    bit(2, "ctrl_guest_offloads"),
    MTU,
    MAC,
    GUEST_TSO4,
    GUEST_TSO6,
    GUEST_ECN,
    GUEST_UFO,
    HOST_TSO4,
    HOST_TSO6,
    HOST_ECN,
    HOST_UFO,
    MRG_RXBUF,
    STATUS,
    CTRL_VQ,
    bit(18, "ctrl_rx"),
    bit(19, "ctrl_vlan"),
    bit(20, "ctrl_rx_extra"),
    bit(21, "guest_announce"),
    bit(22, "mq"),
    bit(23, "ctrl_mac_addr"),
    RING_INDIRECT_DESC,
    RING_EVENT_IDX,
    VERSION_1,
    bit(40, "ring_reset"),
    GUEST_USO4,
    GUEST_USO6,
    HOST_USO,
];

/// A set of feature bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features(pub u64);

impl Features {
    /// Whether `bit` is in the set.
    pub fn has(self, bit: Bit) -> bool {
        self.0 & bit.mask != 0
    }

    /// The set with `bit` added when `condition` holds.
    fn with(self, bit: Bit, condition: bool) -> Features {
        if condition {
            Features(self.0 | bit.mask)
        } else {
            self
        }
    }
}

impl core::fmt::Display for Features {
    /// The named bits in the set, then any other as `bitN`.
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let mut rest = self.0;
        let mut first = true;
        let mut word = |f: &mut core::fmt::Formatter, args: core::fmt::Arguments| {
            let separator = if first { "" } else { " " };
            first = false;
            write!(f, "{separator}{args}")
        };
        for bit in NAMED.iter().filter(|bit| self.has(**bit)) {
            word(f, format_args!("{}", bit.name))?;
            rest &= !bit.mask;
        }
        while rest != 0 {
            let index = rest.trailing_zeros();
            word(f, format_args!("bit{index}"))?;
            rest &= rest - 1;
        }
        Ok(())
    }
}

/// How big the receive buffers the driver posts are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveBuffers {
    /// One Ethernet frame each: no super-frames can be received.
    Small,
    /// A whole 64 KiB super-frame each.
    Big,
    /// One Ethernet frame each, and a super-frame spread over several
    /// (`VIRTIO_NET_F_MRG_RXBUF`), gathered by the driver into one of a few big buffers:
    /// super-frames where memory is too short for big buffers.
    Merged,
}

/// Why a device cannot be driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureError {
    /// It is not a modern device.
    NotVersion1,
}

/// The features to accept from a device offering `offered`, receiving into `buffers`.
/// The specification's dependencies (5.1.3.1) hold by construction: each offload needs
/// the checksum offload of its direction, ECN its segmentation.
pub fn accept(offered: Features, buffers: ReceiveBuffers) -> Result<Features, FeatureError> {
    if !offered.has(VERSION_1) {
        return Err(FeatureError::NotVersion1);
    }
    let offers = |bit| offered.has(bit);
    let merged = buffers == ReceiveBuffers::Merged && offered.has(MRG_RXBUF);
    let big = buffers == ReceiveBuffers::Big || merged;
    let accepted = Features::default()
        // Modern virtio only (the transports are modern).
        .with(VERSION_1, true)
        // The MAC the hypervisor gave the NIC; without it the NIC has none.
        .with(MAC, offers(MAC))
        // Link status: harmless, and what a hypervisor expects a driver to read.
        .with(STATUS, offers(STATUS))
        // One interrupt per batch of received frames, one kick per batch of sent ones.
        .with(RING_EVENT_IDX, offers(RING_EVENT_IDX))
        // Transmit: the device completes checksums, segments TCP/IPv4 and TCP/IPv6 and
        // fragments UDP super-frames (with CWR too), so forwarded super-frames leave whole.
        .with(CSUM, offers(CSUM))
        .with(HOST_TSO4, offers(CSUM) && offers(HOST_TSO4))
        .with(HOST_TSO6, offers(CSUM) && offers(HOST_TSO6))
        .with(
            HOST_ECN,
            offers(CSUM) && (offers(HOST_TSO4) || offers(HOST_TSO6)) && offers(HOST_ECN),
        )
        .with(HOST_UFO, offers(CSUM) && offers(HOST_UFO))
        // Receive: partial checksums always; super-frames only into buffers that hold one.
        .with(GUEST_CSUM, offers(GUEST_CSUM))
        .with(GUEST_TSO4, big && offers(GUEST_CSUM) && offers(GUEST_TSO4))
        .with(GUEST_TSO6, big && offers(GUEST_CSUM) && offers(GUEST_TSO6))
        .with(
            GUEST_ECN,
            big && offers(GUEST_CSUM)
                && (offers(GUEST_TSO4) || offers(GUEST_TSO6))
                && offers(GUEST_ECN),
        )
        .with(GUEST_UFO, big && offers(GUEST_CSUM) && offers(GUEST_UFO))
        // A super-frame over several small buffers, where big ones do not fit the memory
        // (big buffers keep it whole, without the copy that gathers it).
        .with(MRG_RXBUF, merged);
    // Not accepted: USO (it
    // needs its own segmentation kind in the data plane and software segmenter), indirect
    // descriptors (every buffer is one descriptor), the control queue and MTU.
    Ok(accepted)
}

/// Whether a device offering `offered` could send super-frames (worth big buffers).
pub fn offers_super_frames(offered: Features) -> bool {
    offered.has(GUEST_CSUM)
        && (offered.has(GUEST_TSO4) || offered.has(GUEST_TSO6) || offered.has(GUEST_UFO))
}

/// What the NIC takes on transmission, for the data plane.
pub fn transmit_offloads(accepted: Features) -> dataplane::offload::NicOffloads {
    dataplane::offload::NicOffloads {
        checksum: accepted.has(CSUM),
        tcp4_segmentation: accepted.has(HOST_TSO4),
        tcp6_segmentation: accepted.has(HOST_TSO6),
        ecn: accepted.has(HOST_ECN),
        udp_fragmentation: accepted.has(HOST_UFO),
    }
}

/// The offloads of each direction, as the console's NIC line says them:
/// `tx=csum,tso4,tso6,ecn,ufo rx=csum,tso4,tso6,ecn,ufo`, or `none`.
pub struct Offloads(pub Features);

impl core::fmt::Display for Offloads {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let features = self.0;
        let directions = [
            ("tx", [CSUM, HOST_TSO4, HOST_TSO6, HOST_ECN, HOST_UFO]),
            (
                "rx",
                [GUEST_CSUM, GUEST_TSO4, GUEST_TSO6, GUEST_ECN, GUEST_UFO],
            ),
        ];
        let short = ["csum", "tso4", "tso6", "ecn", "ufo"];
        let mut any = false;
        for (direction, bits) in directions {
            let mut names = bits
                .iter()
                .zip(short)
                .filter(|(bit, _)| features.has(**bit))
                .map(|(_, name)| name);
            if let Some(first) = names.next() {
                let separator = if any { " " } else { "" };
                write!(f, "{separator}{direction}={first}")?;
                for name in names {
                    write!(f, ",{name}")?;
                }
                if direction == "rx" && features.has(MRG_RXBUF) {
                    // Super-frames arrive over merged small buffers.
                    f.write_str(",merged")?;
                }
                any = true;
            }
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}
