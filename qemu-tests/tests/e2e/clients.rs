//! Real clients through the appliance (root; skipped loudly without it, failing under CI):
//! Linux network namespaces on the appliance's taps use their own kernels' stacks and the
//! programs users run — `ping`, `curl`, `dig` — against servers in the uplink's namespace,
//! which plays the internet. Each test boots its own appliance with the forwarding ruleset
//! (`qemu-tests/rules/forwarding.rules`).

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use qemu_tests::addressing::{appliance_address, host_address, INTERNET_SERVER};
use qemu_tests::client_tools::{curl, dig, DigTransport, Fetch, FetchResult};
use qemu_tests::dns_server::DnsTransport;
use qemu_tests::drop_log::{wait_for_drop, DropCause};
use qemu_tests::expect::ANSWER_TIMEOUT;
use qemu_tests::forwarding_ruleset::{
    default_rule_position, position_of, ALPHA_FORWARD_PORT, ALPHA_NIC, BETA_FORWARD_PORT, BETA_NIC,
    BLOCKED_PORT, BLOCK_RULE, REJECTED_PORT, REJECT_RULE, UPLINK_NIC, WEB_PORT,
};
use qemu_tests::notice::require_root;
use qemu_tests::tap_appliance::TapAppliance;
use qemu_tests::test_host::TestHost;
use qemu_tests::uplink_services::{INTERNET_WEB_SERVER, WEB_SERVER_NAME};
use qemu_tests::web_server::{Greeting, WebServer};
use qemu_tests::{ensure, Failure, Outcome};

const PINGS: u32 = 3;
/// Connecting through an emulated appliance is quick, but the host is shared: generous.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client waits on a blocked port before concluding that it times out.
pub(crate) const BLOCKED_WAIT: Duration = Duration::from_secs(5);

/// Boots the appliance between real hosts, or `None` when `test` must be skipped (not root).
pub(crate) fn boot(test: &str, kernel_cmdline: &str) -> Outcome<Option<TapAppliance>> {
    if !require_root(test)? {
        return Ok(None);
    }
    TapAppliance::boot(kernel_cmdline).map(Some)
}

/// `http://address:port/path` (`http://[address]:port/path` for IPv6).
pub(crate) fn url(address: impl Into<IpAddr>, port: u16, path: &str) -> String {
    format!("http://{}{path}", SocketAddr::new(address.into(), port))
}

/// The greeting of the web server `url` names, fetched from `host`.
pub(crate) fn greeting(host: &TestHost, url: &str) -> Outcome<Greeting> {
    let fetched = curl(host, url, CONNECT_TIMEOUT, TRANSFER_TIMEOUT)?;
    match &fetched.outcome {
        Fetch::Body(body) => Greeting::parse(body)
            .ok_or_else(|| Failure::new(format!("{url} answered {body:?}, not a greeting"))),
        _ => Err(Failure::new(format!(
            "curl {url} from {}: {fetched:?}",
            host.namespace()
        ))),
    }
}

/// Fails unless every one of `PINGS` echo requests from `host` to `target` is answered.
pub(crate) fn pings_all(host: &TestHost, target: impl Into<smoltcp::wire::Ipv4Address>) -> Outcome {
    let target = target.into();
    let summary = host.ping(target, PINGS)?;
    ensure(
        summary.transmitted == PINGS && summary.received == PINGS,
        || {
            format!(
                "ping {target} from {} got {} of {} replies:\n{}",
                host.namespace(),
                summary.received,
                summary.transmitted,
                summary.output
            )
        },
    )
}

#[test]
fn each_client_reaches_the_internet_masqueraded_with_ping_and_curl() -> Outcome {
    let Some(appliance) = boot(
        "each_client_reaches_the_internet_masqueraded_with_ping_and_curl",
        "",
    )?
    else {
        return Ok(());
    };
    let uplink_address = appliance_address(UPLINK_NIC).address();
    for nic in [ALPHA_NIC, BETA_NIC] {
        let client = appliance.client(nic)?;
        pings_all(client, INTERNET_SERVER)?;
        let seen = greeting(client, &url(INTERNET_SERVER, WEB_PORT, "/"))?;
        ensure(
            seen.server == INTERNET_WEB_SERVER && seen.peer.ip() == IpAddr::from(uplink_address),
            || {
                format!(
                    "nic{nic}'s client reached `{}`, seen from {}: expected `{INTERNET_WEB_SERVER}` seeing the appliance's uplink address {uplink_address}",
                    seen.server, seen.peer
                )
            },
        )?;
    }
    Ok(())
}

#[test]
fn a_rejected_port_is_refused_at_once_and_a_blocked_port_times_out() -> Outcome {
    let Some(appliance) = boot(
        "a_rejected_port_is_refused_at_once_and_a_blocked_port_times_out",
        "",
    )?
    else {
        return Ok(());
    };
    let alpha = appliance.client(ALPHA_NIC)?;
    let refused = curl(
        alpha,
        &url(INTERNET_SERVER, REJECTED_PORT, "/"),
        CONNECT_TIMEOUT,
        TRANSFER_TIMEOUT,
    )?;
    ensure(
        refused.outcome == Fetch::Refused && refused.elapsed < CONNECT_TIMEOUT,
        || {
            format!("port {REJECTED_PORT} (`{REJECT_RULE}`): expected the connection refused at once, got {refused:?}")
        },
    )?;
    let blocked = curl(
        alpha,
        &url(INTERNET_SERVER, BLOCKED_PORT, "/"),
        BLOCKED_WAIT,
        BLOCKED_WAIT,
    )?;
    ensure(blocked.outcome == Fetch::TimedOut, || {
        format!("port {BLOCKED_PORT} (`{BLOCK_RULE}`): expected the connection to time out, got {blocked:?}")
    })?;
    for (port, rule, verdict) in [
        (REJECTED_PORT, REJECT_RULE, "reject"),
        (BLOCKED_PORT, BLOCK_RULE, "block"),
    ] {
        let cause = DropCause::Rule(position_of(rule)?);
        wait_for_drop(
            appliance.vm.console(),
            &format!("alpha's connection to port {port} logged as `{cause}`"),
            ANSWER_TIMEOUT,
            |line| {
                line.nic == format!("nic{ALPHA_NIC}")
                    && line.cause == cause
                    && line
                        .verdict
                        .as_deref()
                        .is_none_or(|stated| stated == verdict)
                    && line.protocol == "tcp"
                    && line.src.address == host_address(ALPHA_NIC)
                    && line.dst.address == INTERNET_SERVER
                    && line.dst.port == Some(port)
            },
        )?;
    }
    Ok(())
}

#[test]
fn dns_asked_of_the_appliance_is_answered_by_the_upstream_resolver_over_udp_and_tcp() -> Outcome {
    let Some(appliance) = boot(
        "dns_asked_of_the_appliance_is_answered_by_the_upstream_resolver_over_udp_and_tcp",
        "",
    )?
    else {
        return Ok(());
    };
    let alpha = appliance.client(ALPHA_NIC)?;
    let resolver = appliance_address(ALPHA_NIC).address();
    for transport in [DigTransport::Udp, DigTransport::Tcp] {
        let answer = dig(alpha, resolver, WEB_SERVER_NAME, transport)?;
        ensure(
            answer.status == "NOERROR"
                && answer.addresses == [INTERNET_SERVER]
                && answer.server.starts_with(&format!("{resolver}#53")),
            || {
                format!("dig @{resolver} {WEB_SERVER_NAME} over {transport:?}: {answer:?}, expected NOERROR with {INTERNET_SERVER} from {resolver}#53")
            },
        )?;
    }
    // A name only the upstream resolver can say does not exist: the query is redirected there, and its answer comes back.
    let missing = dig(alpha, resolver, "nowhere.moat.test", DigTransport::Udp)?;
    ensure(missing.status == "NXDOMAIN", || {
        format!("dig nowhere.moat.test: {missing:?}, expected NXDOMAIN")
    })?;
    // The upstream resolver saw each query over the transport the client used, from the
    // appliance's uplink address (redirected, then masqueraded).
    let uplink_address = IpAddr::from(appliance_address(UPLINK_NIC).address());
    let queries = appliance.services.dns.queries();
    for transport in [DnsTransport::Udp, DnsTransport::Tcp] {
        ensure(
            queries.iter().any(|query| {
                query.name == WEB_SERVER_NAME
                    && query.transport == transport
                    && query.peer.ip() == uplink_address
            }),
            || {
                format!("the upstream resolver saw no {transport:?} query for {WEB_SERVER_NAME} from {uplink_address}; it saw {queries:?}")
            },
        )?;
    }
    Ok(())
}

#[test]
fn a_second_client_cannot_reach_the_first() -> Outcome {
    let Some(appliance) = boot("a_second_client_cannot_reach_the_first", "")? else {
        return Ok(());
    };
    let (alpha, beta) = (appliance.client(ALPHA_NIC)?, appliance.client(BETA_NIC)?);
    let alpha_web = SocketAddrV4::new(host_address(ALPHA_NIC), WEB_PORT);
    let _server = WebServer::start(alpha.namespace(), alpha_web, "alpha")?;
    // Alpha's server is up (alpha reaches it itself), and beta's network works.
    greeting(alpha, &url(*alpha_web.ip(), WEB_PORT, "/"))?;
    greeting(beta, &url(INTERNET_SERVER, WEB_PORT, "/"))?;

    let attempt: FetchResult = curl(
        beta,
        &url(*alpha_web.ip(), WEB_PORT, "/"),
        BLOCKED_WAIT,
        BLOCKED_WAIT,
    )?;
    ensure(attempt.outcome == Fetch::TimedOut, || {
        format!("beta's connection to alpha's web server: expected a timeout (blocked by the default), got {attempt:?}")
    })?;
    let summary = beta.ping(*alpha_web.ip(), 2)?;
    ensure(summary.received == 0, || {
        format!("beta's pings to alpha were answered:\n{}", summary.output)
    })?;
    let cause = DropCause::Default(default_rule_position()?);
    wait_for_drop(
        appliance.vm.console(),
        &format!("beta's connection to alpha logged as `{cause}`"),
        ANSWER_TIMEOUT,
        |line| {
            line.nic == format!("nic{BETA_NIC}")
                && line.cause == cause
                && line.src.address == host_address(BETA_NIC)
                && line.dst.address == *alpha_web.ip()
                && line.dst.port == Some(WEB_PORT)
        },
    )
    .map(|_| ())
}

#[test]
fn port_forwards_from_the_uplink_reach_the_client_they_name() -> Outcome {
    let Some(appliance) = boot(
        "port_forwards_from_the_uplink_reach_the_client_they_name",
        "",
    )?
    else {
        return Ok(());
    };
    let mut servers = Vec::new();
    for (nic, name) in [(ALPHA_NIC, "alpha"), (BETA_NIC, "beta")] {
        let address = SocketAddrV4::new(host_address(nic), WEB_PORT);
        servers.push(WebServer::start(
            appliance.client(nic)?.namespace(),
            address,
            name,
        )?);
    }
    let uplink_address = appliance_address(UPLINK_NIC).address();
    let outside = IpAddr::from(host_address(UPLINK_NIC));
    for (port, name) in [(ALPHA_FORWARD_PORT, "alpha"), (BETA_FORWARD_PORT, "beta")] {
        let seen = greeting(&appliance.uplink, &url(uplink_address, port, "/"))?;
        ensure(seen.server == name && seen.peer.ip() == outside, || {
            format!(
                "the uplink's port {port} reached `{}`, which saw {}: expected `{name}`, seeing the outside host {outside}",
                seen.server, seen.peer
            )
        })?;
    }
    Ok(())
}
