//! A client that reads slowly or stops reading (a paused VM, a hung driver), rootless: its
//! NIC's transmissions complete slowly or not at all — QEMU holds the frame its socket did
//! not take, and then the whole transmit ring — and the frames the appliance still has for
//! that client find the ring full. The appliance must drop those frames rather than go at
//! the client's pace: it keeps draining the uplink about as fast as while the client read,
//! keeps answering the other client, and delivers to the client again once it reads.
//!
//! The uplink floods beta with replies to a flow beta opened, three times for the same
//! time: while beta reads (the baseline), while it reads one frame a millisecond, and while
//! it does not read. The rates the appliance drains the flood at (the rate QEMU takes the
//! uplink's frames) are compared, in the same run. The console names the stalled NIC, and
//! its return — and never the slow one.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use dataplane::testutil::datagram::{Ipv4Datagram, Ipv4Frame, Transport, UdpDatagram};
use qemu_tests::addressing::INTERNET_SERVER;
use qemu_tests::expect::{answers_ping, ANSWER_TIMEOUT};
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, IPERF_PORT, UPLINK_NIC};
use qemu_tests::frame_flood::{Flooded, FrameFlood};
use qemu_tests::segment_host::SegmentHost;
use qemu_tests::segmented_appliance::{SegmentedAppliance, SETTLE};
use qemu_tests::{ensure, Failure, Outcome};

use crate::forwarding::host_at;
use crate::interrupts::joined;

/// How long each flood runs.
const FLOOD: Duration = Duration::from_secs(4);
/// Beta's port of the flow the uplink floods.
const BETA_PORT: u16 = 5_002;
/// Payload sizes of the flood's frames: a short frame (copied on to the client) and a long
/// one (which the appliance lends from the uplink's receive buffer when the client's ring
/// has room). Below beta's MTU.
const PAYLOADS: [usize; 2] = [18, 1_000];
/// The least the drain rate while beta reads slowly or not at all may be, as a share of the
/// rate while it reads: dropping a frame costs the appliance less than delivering it, and
/// waiting on beta's ring may take an eighth of the time, so the rate should hardly fall;
/// a wait per frame on the full ring takes it to beta's pace, a few percent.
const LEAST_SHARE: f64 = 0.5;
/// How long slow beta pauses after each frame it reads.
const SLOW_READ_PAUSE: Duration = Duration::from_millis(1);
/// Alpha's pings to the appliance during each flood.
const ALPHA_PINGS: u16 = 20;
/// The first byte of the payload of the frame that shows beta is served again.
const MARKER: u8 = 0x4d;

/// A UDP frame from beta to the internet server, on the flow the uplink then floods.
fn beta_udp(appliance: &SegmentedAppliance) -> Outcome<Ipv4Frame> {
    let template = appliance.syn_from_host(
        BETA_NIC,
        host_at(BETA_NIC, BETA_PORT),
        SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT),
        0,
    )?;
    Ok(Ipv4Frame {
        datagram: Ipv4Datagram {
            transport: Transport::Udp(UdpDatagram {
                src_port: BETA_PORT,
                dst_port: IPERF_PORT,
                payload: b"open the flow".to_vec(),
            }),
            ..template.datagram
        },
        ..template
    })
}

/// A reply from the internet server to `natted` (beta's flow as it left the uplink), with
/// `payload_len` bytes of `fill`.
fn reply(
    appliance: &SegmentedAppliance,
    natted: SocketAddrV4,
    payload_len: usize,
    fill: u8,
) -> Outcome<Vec<u8>> {
    let server = SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT);
    let template = appliance.syn_from_host(UPLINK_NIC, server, natted, 0)?;
    let frame = Ipv4Frame {
        datagram: Ipv4Datagram {
            transport: Transport::Udp(UdpDatagram {
                src_port: IPERF_PORT,
                dst_port: natted.port(),
                payload: vec![fill; payload_len],
            }),
            ..template.datagram
        },
        ..template
    };
    Ok(frame.emit())
}

/// Whether `frame` is a UDP datagram to beta's flow whose payload starts with `fill`.
fn is_reply_to_beta(frame: &Ipv4Frame, fill: u8) -> bool {
    matches!(
        &frame.datagram.transport,
        Transport::Udp(udp) if udp.dst_port == BETA_PORT && udp.payload.first() == Some(&fill)
    )
}

/// Beta opens its flow; returns the flow's address as it left the uplink, after the first
/// reply to it reached beta (the appliance then knows beta's MAC).
fn open_beta_flow(appliance: &SegmentedAppliance) -> Outcome<SocketAddrV4> {
    appliance.send(BETA_NIC, &beta_udp(appliance)?)?;
    let out = appliance.expect_on(UPLINK_NIC, "beta's UDP datagram to the server", |frame| {
        frame
            .datagram
            .endpoints()
            .is_some_and(|(_, to)| to.port() == IPERF_PORT)
    })?;
    let (natted, _) = out
        .datagram
        .endpoints()
        .ok_or_else(|| Failure::new("beta's forwarded datagram has no ports"))?;
    appliance
        .host(UPLINK_NIC)?
        .send(&reply(appliance, natted, 8, 0x31)?)?;
    appliance.expect_on(BETA_NIC, "the server's first reply", |frame| {
        is_reply_to_beta(frame, 0x31)
    })?;
    Ok(natted)
}

/// How beta reads during a flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BetaReads {
    /// As fast as frames come.
    Fully,
    /// One frame, then a pause of [`SLOW_READ_PAUSE`].
    Slowly,
    /// Not at all.
    Not,
}

/// Beta reading slowly until `end`; returns the frames it read.
fn read_slowly(beta: &SegmentHost, end: Instant) -> Outcome<usize> {
    let mut read = 0;
    while Instant::now() < end {
        if beta.receive(end)?.is_some() {
            read += 1;
        }
        std::thread::sleep(SLOW_READ_PAUSE);
    }
    Ok(read)
}

/// Floods beta's flow from the uplink for [`FLOOD`]; while it runs, beta reads as `reads`
/// says, and alpha pings the appliance. Returns what the flood drained and alpha's
/// round-trip times.
fn flood_beta(
    appliance: &SegmentedAppliance,
    frames: &[Vec<u8>],
    reads: BetaReads,
) -> Outcome<(Flooded, Vec<Duration>)> {
    let (uplink, alpha, beta) = (
        appliance.host(UPLINK_NIC)?,
        appliance.host(ALPHA_NIC)?,
        appliance.host(BETA_NIC)?,
    );
    let alpha_station = appliance.appliance(ALPHA_NIC)?;
    std::thread::scope(|scope| {
        let flood = scope.spawn(|| {
            FrameFlood {
                frames: frames.to_vec(),
                duration: FLOOD,
            }
            .send(uplink)
        });
        let reader = scope.spawn(|| match reads {
            BetaReads::Fully => beta
                .frames_within(FLOOD + SETTLE)
                .map(|frames| frames.len()),
            BetaReads::Slowly => read_slowly(beta, Instant::now() + FLOOD),
            BetaReads::Not => Ok(0),
        });
        let pings = scope.spawn(|| -> Outcome<Vec<Duration>> {
            let mut rtts = Vec::new();
            for seq_no in 0..ALPHA_PINGS {
                let sent = Instant::now();
                answers_ping(alpha, alpha_station, seq_no, ANSWER_TIMEOUT)?;
                rtts.push(sent.elapsed());
                std::thread::sleep(FLOOD / u32::from(ALPHA_PINGS) / 2);
            }
            Ok(rtts)
        });
        let flooded = joined(flood.join(), "the uplink's flood")?;
        let read = joined(reader.join(), "beta's reader")?;
        ensure(reads == BetaReads::Not || read > 0, || {
            format!("beta, reading {reads:?}, received none of the flood to it")
        })?;
        let rtts = joined(pings.join(), "alpha's pings")?;
        Ok((flooded, rtts))
    })
}

/// Whether `line` reports beta's NIC stalled.
fn is_stall_report(line: &str) -> bool {
    line.starts_with("moat: warning: nic2 transmit stalled: ")
}

/// The median of `rtts`, in milliseconds.
fn median_ms(rtts: &mut [Duration]) -> f64 {
    rtts.sort();
    rtts.get(rtts.len() / 2)
        .map_or(0.0, |rtt| rtt.as_secs_f64() * 1_000.0)
}

#[test]
fn a_slow_or_stalled_client_slows_neither_the_uplink_nor_the_other_client() -> Outcome {
    let appliance = SegmentedAppliance::boot("")?;
    let natted = open_beta_flow(&appliance)?;
    let frames = PAYLOADS
        .iter()
        .map(|&len| reply(&appliance, natted, len, 0x66))
        .collect::<Outcome<Vec<_>>>()?;

    let (reading, mut reading_rtts) = flood_beta(&appliance, &frames, BetaReads::Fully)?;
    let (slow, mut slow_rtts) = flood_beta(&appliance, &frames, BetaReads::Slowly)?;
    // A slow reader is not a stalled one.
    let console = appliance.vm.console();
    ensure(console.count(is_stall_report) == 0, || {
        format!(
            "beta, reading slowly, was reported stalled:\n{}",
            console.transcript()
        )
    })?;
    let (stalled, mut stalled_rtts) = flood_beta(&appliance, &frames, BetaReads::Not)?;
    console.wait_until("nic2's stall reported", ANSWER_TIMEOUT, |snapshot| {
        snapshot
            .lines
            .iter()
            .any(|line| is_stall_report(line))
            .then_some(Ok(()))
    })?;
    eprintln!(
        "flood to beta: {:.0} frames/s while beta reads, {:.0}/s while it reads slowly, \
         {:.0}/s while it does not; alpha's ping RTT median {:.1}, {:.1} and {:.1} ms",
        reading.rate(),
        slow.rate(),
        stalled.rate(),
        median_ms(&mut reading_rtts),
        median_ms(&mut slow_rtts),
        median_ms(&mut stalled_rtts),
    );
    for (how, flooded) in [("read slowly", slow), ("did not read", stalled)] {
        let share = flooded.rate() / reading.rate().max(1.0);
        ensure(share >= LEAST_SHARE, || {
            format!(
                "while beta {how}, the appliance drained the uplink at {:.0} frames/s, \
                 {share:.2} of the {:.0}/s while it read: it waits on beta's full ring",
                flooded.rate(),
                reading.rate()
            )
        })?;
    }

    // Beta reads again: QEMU's held frame and the ring go out, and new frames follow.
    let uplink = appliance.host(UPLINK_NIC)?;
    let beta = appliance.host(BETA_NIC)?;
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    while !beta.frames_within(SETTLE)?.is_empty() {
        ensure(Instant::now() < deadline, || {
            "beta was still receiving the stalled flood's backlog long after it read again"
                .to_string()
        })?;
    }
    uplink.send(&reply(&appliance, natted, 8, MARKER)?)?;
    appliance.expect_on(
        BETA_NIC,
        "the server's reply after beta read again",
        |frame| is_reply_to_beta(frame, MARKER),
    )?;
    console.wait_until("nic2's return reported", ANSWER_TIMEOUT, |snapshot| {
        snapshot
            .lines
            .iter()
            .any(|line| line.starts_with("moat: nic2 transmits again after "))
            .then_some(Ok(()))
    })?;
    answers_ping(
        appliance.host(ALPHA_NIC)?,
        appliance.appliance(ALPHA_NIC)?,
        ALPHA_PINGS,
        ANSWER_TIMEOUT,
    )?;
    appliance.vm.check_still_the_first_boot()
}
