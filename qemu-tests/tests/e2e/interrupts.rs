//! Interrupts under a flood, on `q35` and `pc`, with MSI-X and with the INTx fallback
//! (`-global virtio-net-pci.vectors=0`, a device without MSI-X).
//!
//! Both client NICs are flooded at once for longer than the watchdog's timeout, at whatever
//! rate the appliance drains: alpha sends one UDP flow that is forwarded (NAT) out of the
//! uplink, beta sends SYNs from its own address that open new flows in a small state table
//! (early drops, as in a real SYN flood). Every NIC interrupts all the time — receive on the
//! clients, transmit on the uplink — which is the load under which the INTx path used to
//! hang for good: an interrupt handler spinning on the I/O APIC lock that the main loop held
//! while unmasking a line. Afterwards the appliance must still forward and answer ping, with
//! no fatal report and no watchdog reset.
//!
//! The rates each run reached are printed (`--nocapture`), for comparison; they are not
//! asserted beyond "a flood happened".

use std::net::SocketAddrV4;
use std::time::Duration;

use dataplane::testutil::datagram::{Ipv4Datagram, Ipv4Frame, Transport, UdpDatagram};
use image::qemu::Machine;
use qemu_tests::addressing::INTERNET_SERVER;
use qemu_tests::expect::{answers_ping, ANSWER_TIMEOUT};
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, IPERF_PORT, UPLINK_NIC};
use qemu_tests::frame_flood::{Flooded, FrameFlood};
use qemu_tests::segment_host::SegmentHost;
use qemu_tests::segmented_appliance::{SegmentedAppliance, SETTLE};
use qemu_tests::{ensure, Failure, Outcome};

use crate::forwarding::{host_at, is_tcp_to, web_server};

/// How long each flood runs: longer than the watchdog's default timeout (5 s).
const FLOOD: Duration = Duration::from_secs(8);
/// The state table's capacity (`moat.max-states`): small, so beta's SYNs overfill it.
const FLOOD_STATES: u32 = 512;
/// Distinct SYNs beta cycles through (each a new flow the first time round).
const SYN_FLOWS: u16 = 4_096;
/// Frames the two floods must have offered together for the run to count as a flood: far
/// below what the appliance drains even on a busy host, far above a trickle.
const MIN_FLOOD_FRAMES: u64 = 5_000;

/// How long the uplink must be quiet before the probe after a flood.
const QUIET: Duration = Duration::from_secs(1);
/// How long the appliance may take to drain the flood's backlog.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(60);

/// `-global virtio-net-pci.vectors=0`: virtio-net devices without MSI-X.
fn without_msix() -> Vec<String> {
    vec!["-global".into(), "virtio-net-pci.vectors=0".into()]
}

/// A 64-byte UDP frame from alpha to the internet server, forwarded and masqueraded.
fn alpha_udp(appliance: &SegmentedAppliance) -> Outcome<Vec<u8>> {
    let template = appliance.syn_from_host(
        ALPHA_NIC,
        host_at(ALPHA_NIC, 5_001),
        SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT),
        0,
    )?;
    let frame = Ipv4Frame {
        datagram: Ipv4Datagram {
            transport: Transport::Udp(UdpDatagram {
                src_port: 5_001,
                dst_port: IPERF_PORT,
                payload: vec![0x6d; 18],
            }),
            ..template.datagram
        },
        ..template
    };
    Ok(frame.emit())
}

/// Beta's SYNs to the web server, each from another port.
fn beta_syns(appliance: &SegmentedAppliance) -> Outcome<Vec<Vec<u8>>> {
    (0..SYN_FLOWS)
        .map(|i| {
            let port = 20_000 + i;
            appliance
                .syn_from_host(
                    BETA_NIC,
                    host_at(BETA_NIC, port),
                    web_server(),
                    u32::from(i).wrapping_mul(2_654_435_761),
                )
                .map(|syn| syn.emit())
        })
        .collect()
}

/// Runs a flood thread's body, turning a panic into a failure.
pub(crate) fn joined<T>(result: std::thread::Result<Outcome<T>>, what: &str) -> Outcome<T> {
    result.unwrap_or_else(|_| Err(Failure::new(format!("{what} panicked"))))
}

/// Floods both clients of an appliance on `machine` (MSI-X unless `msix` is false), then
/// checks that it still forwards and answers.
fn survives_a_flood(machine: Machine, msix: bool) -> Outcome {
    let mut spec = SegmentedAppliance::spec(machine);
    spec.kernel_cmdline = format!("moat.max-states={FLOOD_STATES}");
    if !msix {
        spec.extra_qemu_args = without_msix();
    }
    // Waiting for ready also checks that each NIC says it interrupts the way the spec
    // expects (`msi-x`, or `intx gsi N`) and that the watchdog runs.
    let appliance = SegmentedAppliance::boot_spec(spec)?;
    let udp = alpha_udp(&appliance)?;
    let syns = beta_syns(&appliance)?;
    let (uplink, alpha, beta) = (
        appliance.host(UPLINK_NIC)?,
        appliance.host(ALPHA_NIC)?,
        appliance.host(BETA_NIC)?,
    );
    let (out, alpha_flood, beta_flood) = std::thread::scope(|scope| {
        // The uplink's host answers the appliance's ARP requests for the gateway and
        // collects what comes out.
        let out = scope.spawn(|| uplink.frames_within(FLOOD + SETTLE));
        let alpha_flood = scope.spawn(|| {
            FrameFlood {
                frames: vec![udp],
                duration: FLOOD,
            }
            .send(alpha)
        });
        let beta_flood = scope.spawn(|| {
            FrameFlood {
                frames: syns,
                duration: FLOOD,
            }
            .send(beta)
        });
        (
            joined(out.join(), "the uplink's collector"),
            joined(alpha_flood.join(), "alpha's flood"),
            joined(beta_flood.join(), "beta's flood"),
        )
    });
    let (out, alpha_flood, beta_flood) = (out?, alpha_flood?, beta_flood?);
    let forwarded_udp = out
        .iter()
        .filter_map(|bytes| Ipv4Frame::parse(bytes).ok())
        .filter(|frame| matches!(frame.datagram.transport, Transport::Udp(_)))
        .count();
    let forwarded_syns = out
        .iter()
        .filter_map(|bytes| Ipv4Frame::parse(bytes).ok())
        .filter(|frame| is_tcp_to(frame, web_server()))
        .count();
    let mode = if msix { "msi-x" } else { "intx" };
    let describe = |flood: &Flooded| format!("{} frames ({:.0}/s)", flood.sent, flood.rate());
    eprintln!(
        "{machine} {mode}: offered alpha {} and beta {}; forwarded {forwarded_udp} UDP ({:.0}/s) and {forwarded_syns} SYNs",
        describe(&alpha_flood),
        describe(&beta_flood),
        forwarded_udp as f64 / FLOOD.as_secs_f64()
    );
    ensure(
        alpha_flood.sent + beta_flood.sent >= MIN_FLOOD_FRAMES,
        || {
            format!(
                "{machine} {mode}: only {} frames offered in {:.0} s: not a flood",
                alpha_flood.sent + beta_flood.sent,
                FLOOD.as_secs_f64()
            )
        },
    )?;
    ensure(forwarded_udp > 0, || {
        format!("{machine} {mode}: none of alpha's UDP flood was forwarded")
    })?;
    drain_backlog(uplink)?;
    still_forwards_and_answers(&appliance)
}

/// Collects what is still coming out of the uplink until it has been quiet for
/// [`QUIET`]: on a busy host the appliance is still draining the flood when the collector's
/// window ends, and a collector that stops reading fills QEMU's socket and then the
/// appliance's transmit ring, which would drop the probe SYN that follows (`tx-full`) for
/// a reason that is the harness's, not the appliance's. Fails if the backlog does not end
/// within [`BACKLOG_TIMEOUT`].
fn drain_backlog(uplink: &SegmentHost) -> Outcome {
    let start = std::time::Instant::now();
    let mut drained = 0;
    loop {
        let frames = uplink.frames_within(QUIET)?;
        if frames.is_empty() {
            return Ok(());
        }
        drained += frames.len();
        if start.elapsed() >= BACKLOG_TIMEOUT {
            return Err(Failure::new(format!(
                "the uplink was still receiving the flood's backlog {:.0} s after it ended ({drained} frames since)",
                start.elapsed().as_secs_f64()
            )));
        }
    }
}

/// After the flood: a new connection from alpha leaves the uplink, both clients get their
/// pings answered, and the appliance neither failed nor rebooted.
fn still_forwards_and_answers(appliance: &SegmentedAppliance) -> Outcome {
    let syn = appliance.syn_from_host(
        ALPHA_NIC,
        host_at(ALPHA_NIC, 40_100),
        web_server(),
        0x0bad_cafe,
    )?;
    appliance.send(ALPHA_NIC, &syn)?;
    appliance.expect_on(UPLINK_NIC, "alpha's SYN after the flood", |frame| {
        is_tcp_to(frame, web_server())
            && frame
                .datagram
                .tcp()
                .is_some_and(|tcp| tcp.seq == 0x0bad_cafe)
    })?;
    for nic in [ALPHA_NIC, BETA_NIC] {
        answers_ping(
            appliance.host(nic)?,
            appliance.appliance(nic)?,
            7,
            ANSWER_TIMEOUT,
        )?;
    }
    appliance.vm.check_still_the_first_boot()
}

#[test]
fn q35_with_msix_forwards_and_answers_after_a_flood_on_every_nic() -> Outcome {
    survives_a_flood(Machine::Q35, true)
}

#[test]
fn pc_with_msix_forwards_and_answers_after_a_flood_on_every_nic() -> Outcome {
    survives_a_flood(Machine::Pc, true)
}

#[test]
fn q35_with_intx_forwards_and_answers_after_a_flood_on_every_nic() -> Outcome {
    survives_a_flood(Machine::Q35, false)
}

#[test]
fn pc_with_intx_forwards_and_answers_after_a_flood_on_every_nic() -> Outcome {
    survives_a_flood(Machine::Pc, false)
}
