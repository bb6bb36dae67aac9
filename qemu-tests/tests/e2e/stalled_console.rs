//! A console nobody reads — a paused `virsh console`, a socket reader that hung, a pipe no
//! one drains — rootless: QEMU's serial port stops taking bytes once what it writes to has
//! filled. The appliance must not wait for it: it goes on forwarding and feeding its
//! watchdog, drops whole the lines it has no room for, and once the console is read again
//! says how many it could not print and goes on printing.
//!
//! The test shrinks QEMU's console pipe to a page and stops reading it, asks for a stats
//! report every second and sends drops that are logged (from the internet and from both
//! clients, more than the drop log's rate limit lets through), for five watchdog
//! timeouts; each round a client's connection must still be forwarded.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use image::qemu::Machine;
use qemu_tests::drop_log::DROP_PREFIX;
use qemu_tests::expect::ANSWER_TIMEOUT;
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, BLOCKED_PORT, UPLINK_NIC};
use qemu_tests::segmented_appliance::SegmentedAppliance;
use qemu_tests::{ensure, Failure, Outcome};

use crate::forwarding::{host_at, is_tcp_to, uplink_address, web_server};
use crate::forwarding_drops::has_seq;

/// How long nobody reads the console: five of the watchdog's 5-second timeouts, and long
/// enough for the drop log and the stats reports (about 1.5 KB a second here, held to that
/// by the drop log's rate limit) to overflow the pipe and the kernel's 16 KiB queue.
const STALL: Duration = Duration::from_secs(25);
/// QEMU's console pipe while the test stops reading it (Linux's smallest).
const PIPE_BYTES: usize = 4096;
/// The pause between rounds of logged drops and a forwarded connection.
const ROUND_PAUSE: Duration = Duration::from_millis(100);
/// What the appliance prints where console lines are missing.
const LOST_PREFIX: &str = "moat: warning: console: ";
/// A port nothing listens on at the appliance's uplink address: the default rule drops and
/// logs what comes to it.
const CLOSED_PORT: u16 = 22;

/// Internet addresses a round sends logged drops from (new ones each round, so that the
/// drop log's reserve for quiet senders is used too).
const SOURCES_PER_ROUND: u16 = 8;
/// Logged drops each client sends a round.
const CLIENT_DROPS_PER_ROUND: u16 = 3;

/// Sends one round of drops that the policy logs — more than the drop log's rate limit
/// lets through: from internet addresses to the appliance, and from each client to the
/// port its rule blocks.
fn logged_drops(appliance: &SegmentedAppliance, round: u16) -> Outcome {
    for k in 0..SOURCES_PER_ROUND {
        let host = 1 + ((round * SOURCES_PER_ROUND + k) % 250) as u8;
        let source = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, host), 30_000 + round);
        let syn = appliance.syn_from_host(UPLINK_NIC, source, uplink_address(CLOSED_PORT), 0)?;
        appliance.send(UPLINK_NIC, &syn)?;
    }
    let blocked = SocketAddrV4::new(*web_server().ip(), BLOCKED_PORT);
    for nic in [ALPHA_NIC, BETA_NIC] {
        for k in 0..CLIENT_DROPS_PER_ROUND {
            let source = host_at(nic, 20_000 + round * CLIENT_DROPS_PER_ROUND + k);
            let syn = appliance.syn_from_host(nic, source, blocked, 0)?;
            appliance.send(nic, &syn)?;
        }
    }
    Ok(())
}

/// Sends a SYN from alpha to the web server and waits for it on the uplink.
fn forwards_a_connection(appliance: &SegmentedAppliance, round: u16) -> Outcome {
    let isn = 0x5c00_0000 + u32::from(round);
    let syn = appliance.syn_from_host(
        ALPHA_NIC,
        host_at(ALPHA_NIC, 45_000 + round),
        web_server(),
        isn,
    )?;
    appliance.send(ALPHA_NIC, &syn)?;
    appliance
        .expect_on(
            UPLINK_NIC,
            &format!("alpha's SYN (round {round}) forwarded while the console is not read"),
            |frame| has_seq(frame, isn) && is_tcp_to(frame, web_server()),
        )
        .map(|_| ())
}

/// `N` from the warning `moat: warning: console: N lines (M bytes) not printed: …`.
fn lines_lost(warning: &str) -> Option<u64> {
    warning
        .strip_prefix(LOST_PREFIX)?
        .split_once(" lines (")?
        .0
        .parse()
        .ok()
}

#[test]
fn a_console_nobody_reads_holds_up_no_packet_and_the_lines_lost_are_counted() -> Outcome {
    let mut spec = SegmentedAppliance::spec(Machine::Q35);
    spec.kernel_cmdline = "moat.stats=1".into();
    spec.console_pipe_bytes = Some(PIPE_BYTES);
    let appliance = SegmentedAppliance::boot_spec(spec)?;
    let console = appliance.vm.console();
    let printed_before = console.lines().len();

    console.pause();
    let started = Instant::now();
    let mut round = 0u16;
    let stalled = (|| {
        while started.elapsed() < STALL {
            logged_drops(&appliance, round)?;
            forwards_a_connection(&appliance, round)?;
            round += 1;
            std::thread::sleep(ROUND_PAUSE);
        }
        Ok::<(), Failure>(())
    })();
    console.resume();
    stalled?;

    // Read again: the warning stands where lines are missing, and lines follow it.
    let (warning_at, lost) = console.wait_until(
        "the warning that console lines were not printed",
        ANSWER_TIMEOUT,
        |snapshot| {
            snapshot
                .lines
                .iter()
                .enumerate()
                .skip(printed_before)
                .find_map(|(at, line)| {
                    line.starts_with(LOST_PREFIX).then(|| {
                        lines_lost(line)
                            .map(|lost| (at, lost))
                            .ok_or_else(|| Failure::new(format!("a malformed warning: {line}")))
                    })
                })
        },
    )?;
    ensure(lost > 0, || {
        format!("the warning says {lost} lines were lost")
    })?;
    // A drop line printed behind the warning: the log goes on.
    logged_drops(&appliance, round)?;
    console.wait_until(
        "a drop line after the warning",
        ANSWER_TIMEOUT,
        |snapshot| {
            snapshot.lines[warning_at + 1..]
                .iter()
                .any(|line| line.starts_with(DROP_PREFIX))
                .then_some(Ok(()))
        },
    )?;
    forwards_a_connection(&appliance, round)?;
    // The same boot throughout: neither the watchdog nor a fault ended it.
    appliance.vm.check_still_the_first_boot()
}
