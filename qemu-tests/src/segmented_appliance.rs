//! The appliance built with the forwarding ruleset, every NIC a rootless [`SegmentHost`]: the
//! test is the uplink's gateway (`nic0`) and each client (`nic1`, `nic2`), sends exact frames
//! and sees exactly what the appliance forwards, rewrites, answers or keeps to itself.
//!
//! Absence is proven with a marker: to show that a packet is *not* forwarded, the test sends
//! it, then a packet that is forwarded on the same path; the appliance handles a NIC's frames
//! in order, so once the marker has come out, the first packet would have come out before
//! it. A short settling window afterwards catches a late copy.

use std::net::SocketAddrV4;
use std::time::Duration;

use image::qemu::{BootPath, Machine};
use smoltcp::wire::{EthernetProtocol, EthernetRepr};

use crate::boot_report::BootReport;
use crate::expect::{appliance_on, ANSWER_TIMEOUT};
use crate::forwarding_ruleset::{FORWARDING, NICS};
use crate::segment_host::SegmentHost;
use crate::vm::{Vm, VmSpec};
use crate::{Failure, Outcome};
use dataplane::testutil::datagram::{
    differences, Ipv4Datagram, Ipv4Frame, Ipv4Header, TcpSegment, Transport,
};
use dataplane::testutil::link::Station;

/// How long to keep watching after a marker, for a copy of a dropped packet that arrives late.
pub const SETTLE: Duration = Duration::from_secs(1);

/// TTL of every packet the tests' hosts send.
pub const HOST_TTL: u8 = 64;

/// A running appliance whose NICs are all test hosts.
pub struct SegmentedAppliance {
    /// The VM (its console carries the drop log).
    pub vm: Vm,
    report: BootReport,
}

impl SegmentedAppliance {
    /// Boots the forwarding kernel with `kernel_cmdline` and waits until it is ready.
    pub fn boot(kernel_cmdline: &str) -> Outcome<SegmentedAppliance> {
        let mut spec = SegmentedAppliance::spec(Machine::Q35);
        spec.kernel_cmdline = kernel_cmdline.to_string();
        SegmentedAppliance::boot_spec(spec)
    }

    /// The spec [`SegmentedAppliance::boot`] uses, on `machine`, for tests that change more.
    pub fn spec(machine: Machine) -> VmSpec {
        let mut spec = VmSpec::new(machine, BootPath::Kernel, NICS);
        spec.variant = FORWARDING;
        spec
    }

    /// Boots `spec` (made from [`SegmentedAppliance::spec`]) and waits until it is ready.
    pub fn boot_spec(spec: VmSpec) -> Outcome<SegmentedAppliance> {
        let vm = Vm::start(spec)?;
        let report = vm.wait_ready()?;
        Ok(SegmentedAppliance { vm, report })
    }

    /// The test host on `nic<index>`.
    pub fn host(&self, nic: usize) -> Outcome<&SegmentHost> {
        self.vm.host(nic)
    }

    /// The appliance as the host on `nic<index>` sees it (MAC and address).
    pub fn appliance(&self, nic: usize) -> Outcome<Station> {
        appliance_on(&self.report, nic)
    }

    /// A TCP segment from the host on `nic` (from its own MAC and, unless `src` says
    /// otherwise, its own address) to the appliance's MAC, with TTL [`HOST_TTL`].
    pub fn tcp_from_host(
        &self,
        nic: usize,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        segment: TcpSegment,
    ) -> Outcome<Ipv4Frame> {
        let host = self.host(nic)?.station;
        let appliance = self.appliance(nic)?;
        Ok(Ipv4Frame {
            ethernet: EthernetRepr {
                src_addr: host.mac,
                dst_addr: appliance.mac,
                ethertype: EthernetProtocol::Ipv4,
            },
            datagram: Ipv4Datagram {
                header: Ipv4Header {
                    src: *src.ip(),
                    dst: *dst.ip(),
                    ttl: HOST_TTL,
                    ident: src.port() ^ 0x5a5a,
                    dont_fragment: true,
                },
                transport: Transport::Tcp(TcpSegment {
                    src_port: src.port(),
                    dst_port: dst.port(),
                    ..segment
                }),
            },
        })
    }

    /// A SYN from the host on `nic`, `src` to `dst`, with initial sequence number `isn`.
    pub fn syn_from_host(
        &self,
        nic: usize,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        isn: u32,
    ) -> Outcome<Ipv4Frame> {
        self.tcp_from_host(nic, src, dst, TcpSegment::syn(src.port(), dst.port(), isn))
    }

    /// Sends `frame` from the host on `nic`.
    pub fn send(&self, nic: usize, frame: &Ipv4Frame) -> Outcome {
        self.host(nic)?.send(&frame.emit())
    }

    /// Waits on `nic` for an IPv4 frame that `wanted` accepts. Any IPv4 frame with a wrong
    /// checksum fails the wait at once, naming the checksum.
    pub fn expect_on(
        &self,
        nic: usize,
        what: &str,
        wanted: impl Fn(&Ipv4Frame) -> bool,
    ) -> Outcome<Ipv4Frame> {
        // A broken frame ends the wait with its own failure (the inner `Err`).
        self.host(nic)?
            .await_frame_where(what, ANSWER_TIMEOUT, |bytes| {
                match Ipv4Frame::parse(bytes) {
                    Ok(frame) => wanted(&frame).then_some(Ok(frame)),
                    Err(reason) if is_ipv4(bytes) => Some(Err(Failure::new(format!(
                        "nic{nic}: while waiting for {what}, the appliance sent {reason}"
                    )))),
                    Err(_) => None,
                }
            })?
    }

    /// Proves that no frame `unwanted` accepts comes out of `nic`, using a marker: waits for
    /// the marker frame (sent after the unwanted one) and a [`SETTLE`] window after it, and
    /// fails if an unwanted frame came before, with, or after the marker — or if any IPv4
    /// frame with a wrong checksum came out meanwhile (it could be the unwanted one, broken).
    /// Returns the marker.
    pub fn never_forwarded(
        &self,
        nic: usize,
        unwanted_what: &str,
        unwanted: impl Fn(&Ipv4Frame) -> bool,
        marker_what: &str,
        marker: impl Fn(&Ipv4Frame) -> bool,
    ) -> Outcome<Ipv4Frame> {
        let host = self.host(nic)?;
        let mut seen = Vec::new();
        let marker_frame = host.await_frame_where(
            &format!("{marker_what} (the marker sent after {unwanted_what})"),
            ANSWER_TIMEOUT,
            |bytes| match Ipv4Frame::parse(bytes) {
                Ok(frame) if marker(&frame) => Some(frame),
                _ => {
                    seen.push(bytes.to_vec());
                    None
                }
            },
        )?;
        seen.extend(host.frames_within(SETTLE)?);
        let leaked: Vec<String> = seen
            .iter()
            .filter_map(|bytes| match Ipv4Frame::parse(bytes) {
                Ok(frame) => unwanted(&frame).then(|| frame.to_string()),
                Err(reason) => is_ipv4(bytes).then_some(reason),
            })
            .collect();
        if leaked.is_empty() {
            Ok(marker_frame)
        } else {
            Err(Failure::new(format!(
                "nic{nic}: expected {unwanted_what} to be dropped, but the appliance sent: {}",
                leaked.join("; ")
            )))
        }
    }
}

/// Fails unless `actual` equals `expected` in every field, listing each one that differs.
pub fn same_fields(what: &str, expected: &Ipv4Frame, actual: &Ipv4Frame) -> Outcome {
    let found = differences(expected, actual);
    if found.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{what} differs from what was expected:\n  {}\n  expected: {expected}\n  got:      {actual}",
            found.join("\n  ")
        )))
    }
}

fn is_ipv4(bytes: &[u8]) -> bool {
    smoltcp::wire::EthernetFrame::new_checked(bytes)
        .is_ok_and(|frame| frame.ethertype() == EthernetProtocol::Ipv4)
}
