//! The uplink addressed by a real DHCP server (dnsmasq) in the uplink's namespace (root;
//! skipped loudly without it, failing under CI): the appliance boots before its upstream
//! and gets its lease within seconds of the server starting; when the upstream comes back
//! restarted — another range, another gateway address, another MAC — the appliance
//! recovers on its own, says so, and no flow leaks out with the old address.

use std::time::{Duration, Instant};

use qemu_tests::addressing::INTERNET_SERVER;
use qemu_tests::background::Background;
use qemu_tests::dhcp_uplink::{DhcpUplinkAppliance, FIRST_UPSTREAM, RESTARTED_UPSTREAM};
use qemu_tests::notice::{notice, require_root};
use qemu_tests::packet_capture::Capture;
use qemu_tests::test_host::{parse_ping_summary, TestHost};
use qemu_tests::uplink_services::UplinkServices;
use qemu_tests::{ensure, Failure, Outcome};

/// How long after `moat: ready` the upstream comes up: the appliance's first DISCOVERs
/// are lost, as when a net VM starts after the firewall.
const UPSTREAM_LATE: Duration = Duration::from_secs(3);
/// The client finds a server that became reachable within 2.5 s plus a round trip (see
/// `dataplane::dhcp`); on a shared, emulated host this allows for scheduling noise, and
/// still fails a client that retransmits every 10 s (smoltcp's default).
const LEASE_BOUND: Duration = Duration::from_secs(5);
/// The appliance notices a silent gateway after 5 s, probes it for 6 s, verifies its
/// lease and starts over: about 12 s; allowed generously.
const RECOVERY_BOUND: Duration = Duration::from_secs(40);
/// How long the old flows keep trying after the change while the uplink is watched.
const LEAK_WATCH: Duration = Duration::from_secs(4);

/// Fails unless `host` gets replies to all of three pings to `target`. (With a deadline,
/// ping waits for late replies; without one it gives a reply 2 × the fastest round trip,
/// which a loaded, emulated host misses.)
fn pings_all(host: &TestHost, target: smoltcp::wire::Ipv4Address) -> Outcome {
    let target_text = target.to_string();
    let output = host.run(
        "ping",
        &["-n", "-c", "3", "-i", "0.2", "-w", "15", &target_text],
    )?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let summary = parse_ping_summary(&text);
    ensure(
        // With `-w`, ping may send a fourth request while the third reply is on its way.
        summary.is_some_and(|(_, got)| got >= 3),
        || format!("ping {target} from {}:\n{text}", host.namespace()),
    )
}

/// `ping -i 0.2` from `host` to `target` in the background, for `seconds`.
fn background_ping(
    host: &TestHost,
    target: smoltcp::wire::Ipv4Address,
    seconds: u32,
) -> Outcome<Background> {
    let deadline = seconds.to_string();
    let target = target.to_string();
    let child = host.spawn("ping", &["-n", "-i", "0.2", "-w", &deadline, &target])?;
    Ok(Background::new(format!("ping {target}"), child))
}

/// A TCP stream from `host` to the iperf3 server at `server`, at a gentle 2 Mbit/s (the
/// point is a long-lived connection, not load), in the background.
fn background_stream(host: &TestHost, server: std::net::SocketAddr) -> Outcome<Background> {
    let (address, port) = (server.ip().to_string(), server.port().to_string());
    let child = host.spawn(
        "iperf3",
        &[
            "--client",
            &address,
            "--port",
            &port,
            "--time",
            "90",
            "--bitrate",
            "2M",
        ],
    )?;
    Ok(Background::new(format!("iperf3 to {server}"), child))
}

#[test]
fn a_late_dhcp_server_leases_the_uplink_within_seconds() -> Outcome {
    if !require_root("a_late_dhcp_server_leases_the_uplink_within_seconds")? {
        return Ok(());
    }
    let appliance = DhcpUplinkAppliance::boot()?;
    std::thread::sleep(UPSTREAM_LATE);
    let before = appliance.vm.console().lines().len();
    let server = appliance.attach_uplink(&FIRST_UPSTREAM)?;
    let lease = appliance.wait_for_lease(before, Duration::from_secs(60))?;
    // When the line was already there as the wait began, `at` is later than it came:
    // the figure errs long, never short.
    let took = lease.at - server.started();
    notice(&format!(
        "dhcp: lease {} {:.2} s after dnsmasq started ({} s after the appliance was ready)",
        lease.address,
        took.as_secs_f64(),
        UPSTREAM_LATE.as_secs()
    ));
    ensure(took < LEASE_BOUND, || {
        format!(
            "the lease came {:.2} s after the server started (bound {} s): {}",
            took.as_secs_f64(),
            LEASE_BOUND.as_secs(),
            lease.line
        )
    })?;
    ensure(
        FIRST_UPSTREAM
            .server
            .contains_addr(&lease.address.address()),
        || format!("leased {} from {:?}", lease.address, FIRST_UPSTREAM),
    )?;
    // The lease works: the client reaches the upstream through NAT.
    pings_all(&appliance.client, FIRST_UPSTREAM.server.address())?;
    drop(server);
    Ok(())
}

#[test]
fn a_restarted_upstream_with_another_range_and_mac_is_recovered_from_without_leaking() -> Outcome {
    if !require_root(
        "a_restarted_upstream_with_another_range_and_mac_is_recovered_from_without_leaking",
    )? {
        return Ok(());
    }
    let appliance = DhcpUplinkAppliance::boot()?;
    let server = appliance.attach_uplink(&FIRST_UPSTREAM)?;
    let first = appliance.wait_for_lease(0, Duration::from_secs(60))?;
    let services = UplinkServices::start(&appliance.uplink)?;
    pings_all(&appliance.client, INTERNET_SERVER)?;

    // Flows that run across the restart: a ping, and a TCP stream.
    let ping = background_ping(&appliance.client, INTERNET_SERVER, 90)?;
    let stream = background_stream(&appliance.client, services.iperf.address())?;
    let old_source = format!("ip and src host {}", first.address.address());
    let capture = Capture::start(&appliance.uplink, &old_source)?;
    std::thread::sleep(Duration::from_secs(1));

    let before = appliance.vm.console().lines().len();
    let restarted_at = Instant::now();
    let (restarted, first_log) = appliance.restart_upstream(server, &RESTARTED_UPSTREAM)?;
    let recovered = appliance
        .wait_for_lease(before, RECOVERY_BOUND)
        .map_err(|failure| Failure::new(format!("{failure}\nfirst dnsmasq said:\n{first_log}")))?;
    let took = recovered.at - restarted_at;
    notice(&format!(
        "dhcp: recovered {} -> {} {:.2} s after the upstream restarted",
        first.address,
        recovered.address,
        took.as_secs_f64()
    ));
    ensure(
        RESTARTED_UPSTREAM
            .server
            .contains_addr(&recovered.address.address()),
        || format!("leased {} after the restart", recovered.address),
    )?;
    let told = appliance.uplink_lines(before);
    let said = |words: &str| told.iter().any(|line| line.contains(words));
    ensure(
        said(&format!(
            "refused by {} (NAK)",
            RESTARTED_UPSTREAM.server.address()
        )) && said("states dropped")
            && said(&format!(
                "gateway {} -> {}",
                FIRST_UPSTREAM.server.address(),
                RESTARTED_UPSTREAM.server.address()
            )),
        || format!("the console did not tell the change:\n{}", told.join("\n")),
    )?;

    // Nothing leaves with the old address after the change, however hard the old flows try;
    // a new ping reaches the upstream through NAT with the new address.
    std::thread::sleep(LEAK_WATCH);
    pings_all(&appliance.client, INTERNET_SERVER)?;
    let old_packets = capture.stop()?;
    let leaked: Vec<&String> = old_packets
        .iter()
        .filter(|packet| packet.at > recovered.wall)
        .map(|packet| &packet.line)
        .collect();
    ensure(!old_packets.is_empty(), || {
        "no packet with the old address before the change either: the capture saw nothing"
            .to_string()
    })?;
    ensure(leaked.is_empty(), || {
        format!(
            "{} packet(s) left with the old address {} after the change:\n{}",
            leaked.len(),
            first.address.address(),
            leaked
                .iter()
                .take(10)
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    drop((ping, stream, restarted, services));
    Ok(())
}
