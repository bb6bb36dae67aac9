//! Real clients under load (root): a 10-second `iperf3` TCP transfer through the appliance
//! never stalls, and a bounded SYN flood from one client, overfilling a small state table,
//! neither stalls another client's established transfer nor brings the appliance down.

use std::net::SocketAddrV4;
use std::time::Duration;

use qemu_tests::addressing::{appliance_address, host_address, INTERNET_SERVER};
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_NIC, IPERF_PORT, WEB_PORT};
use qemu_tests::iperf::{IperfLoad, IperfReport, IperfRun};
use qemu_tests::stats_line::wait_for_state_table;
use qemu_tests::syn_flood::SynFlood;
use qemu_tests::tap_appliance::TapAppliance;
use qemu_tests::{ensure, Outcome};

use crate::clients::{boot, greeting, pings_all, url};

/// The state table's capacity in the flood test (`moat.max-states`): small, so that a
/// bounded flood overfills it many times over.
const FLOOD_STATES: u32 = 64;
/// SYNs in the flood.
const FLOOD_SYNS: u32 = 5_000;
/// A closed port on the internet server: it answers each SYN with a RST.
const FLOOD_PORT: u16 = 9;
/// The stats line comes every few seconds when counters change.
const STATS_TIMEOUT: Duration = Duration::from_secs(30);

fn iperf_tcp(seconds: u32) -> IperfRun {
    IperfRun {
        server: SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT).into(),
        seconds,
        load: IperfLoad::Tcp,
    }
}

/// Fails unless the transfer's one-second intervals covered (nearly) `seconds` and none was
/// empty. Nearly: on a loaded host iperf3's interval timer runs late, and it may leave out
/// a last interval cut short by the end of the test (seen: 9 intervals for 10 s).
fn never_stalled(report: &IperfReport, seconds: u32, what: &str) -> Outcome {
    let stalls = report.stalls();
    let covered = report.intervals.last().map_or(0.0, |last| last.end);
    ensure(
        covered >= f64::from(seconds) - 1.0 && stalls.is_empty() && report.received_bytes > 0,
        || {
            format!(
                "{what}: {} intervals up to {covered:.1} s, {} bytes received, stalled in {:?}",
                report.intervals.len(),
                report.received_bytes,
                stalls
                    .iter()
                    .map(|interval| format!("{:.0}-{:.0} s", interval.start, interval.end))
                    .collect::<Vec<_>>()
            )
        },
    )
}

/// The appliance has not failed: no fatal report, and it still forwards and answers.
fn still_working(appliance: &TapAppliance) -> Outcome {
    appliance.vm.check_still_the_first_boot()?;
    for nic in [ALPHA_NIC, BETA_NIC] {
        let client = appliance.client(nic)?;
        pings_all(client, appliance_address(nic).address())?;
        greeting(client, &url(INTERNET_SERVER, WEB_PORT, "/"))?;
    }
    Ok(())
}

#[test]
fn iperf3_tcp_for_10_seconds_through_the_appliance_never_stalls() -> Outcome {
    let Some(appliance) = boot(
        "iperf3_tcp_for_10_seconds_through_the_appliance_never_stalls",
        "",
    )?
    else {
        return Ok(());
    };
    let report = iperf_tcp(10).run(appliance.client(ALPHA_NIC)?)?;
    never_stalled(&report, 10, "alpha's 10-second iperf3 TCP transfer")
}

#[test]
fn a_syn_flood_from_one_client_stalls_neither_another_clients_transfer_nor_the_appliance() -> Outcome
{
    let Some(appliance) = boot(
        "a_syn_flood_from_one_client_stalls_neither_another_clients_transfer_nor_the_appliance",
        &format!("moat.max-states={FLOOD_STATES}"),
    )?
    else {
        return Ok(());
    };
    const SECONDS: u32 = 15;
    let transfer = iperf_tcp(SECONDS).start(appliance.client(ALPHA_NIC)?)?;
    // Let the transfer establish before the flood starts.
    std::thread::sleep(Duration::from_secs(4));
    let flood = SynFlood {
        source: host_address(BETA_NIC),
        target: SocketAddrV4::new(INTERNET_SERVER, FLOOD_PORT),
        count: FLOOD_SYNS,
        burst: 50,
        pause: Duration::from_millis(5),
    }
    .send_from(appliance.client(BETA_NIC)?.namespace())?;
    ensure(flood.sent > FLOOD_STATES * 10, || {
        format!(
            "the flood sent only {} SYNs: not enough to overfill a table of {FLOOD_STATES}",
            flood.sent
        )
    })?;
    // The flood did what it is for: the table filled up, and the appliance made room for new
    // flows (early drop) or refused them, with the cap given on the command line.
    let table = wait_for_state_table(
        appliance.vm.console(),
        &format!("a stats line showing the {FLOOD_STATES}-state table overfilled"),
        STATS_TIMEOUT,
        |table| table.early_drops + table.refused > 0,
    )?;
    ensure(table.capacity == u64::from(FLOOD_STATES), || {
        format!(
            "the state table holds {} states, but the command line capped it at {FLOOD_STATES}",
            table.capacity
        )
    })?;
    let report = transfer.finish()?;
    never_stalled(
        &report,
        SECONDS,
        &format!(
            "alpha's iperf3 transfer while beta sent {} SYNs in {:.1} s",
            flood.sent,
            flood.elapsed.as_secs_f64()
        ),
    )?;
    still_working(&appliance)
}
