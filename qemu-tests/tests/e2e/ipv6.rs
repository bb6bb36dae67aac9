//! IPv6 through the appliance with real Linux hosts (root; skipped loudly without it,
//! failing under CI). The uplink host plays the IPv6 internet: `radvd` advertises
//! `2001:db8:1:2::/64` on the uplink's link, so the appliance's `slaac` uplink configures
//! itself, and the host holds the server address `2001:db8:5::80`. The clients have unique
//! local addresses (`qemu-tests/rules/ipv6.rules`), masqueraded behind the uplink's SLAAC
//! address; the uplink's MTU is IPv6's minimum, 1,280 bytes. radvd names the uplink host
//! as resolver (RDNSS): DNS asked of the appliance's IPv6 addresses is redirected there
//! (where it names none, such queries cross to the uplink host's IPv4 resolver).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use image::qemu::{BootPath, Machine};
use qemu_tests::background::Background;
use qemu_tests::client_tools::{curl, dig_at, DigTransport, Fetch};
use qemu_tests::dns_server::{DnsServer, DnsTransport};
use qemu_tests::drop_log::wait_for_drop_text;
use qemu_tests::kernels::KernelVariant;
use qemu_tests::notice::require_root;
use qemu_tests::radvd::{RaPlan, Radvd};
use qemu_tests::test_host::TestHost;
use qemu_tests::uplink_services::{DNS_PORT, INTERNET_WEB_SERVER, WEB_SERVER_NAME};
use qemu_tests::vm::{NicWiring, Vm, VmSpec};
use qemu_tests::web_server::WebServer;
use qemu_tests::{ensure, Failure, Outcome};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

use crate::clients::{greeting, url};

/// The kernel built with the IPv6 suite's ruleset.
const IPV6: KernelVariant = KernelVariant {
    name: "ipv6",
    rules: Some("qemu-tests/rules/ipv6.rules"),
    features: &[],
};

/// The uplink's link prefix, as radvd advertises it.
pub(crate) const UPLINK_PREFIX: &str = "2001:db8:1:2::";
/// The uplink host's address on the link (the router, and the resolver radvd names).
const ROUTER: &str = "2001:db8:1:2::1";
/// The internet server.
pub(crate) const SERVER: &str = "2001:db8:5::80";
/// The clients' addresses and the appliance's on their networks.
const ALPHA: &str = "fd00:137:1::2";
const BETA: &str = "fd00:137:2::2";
pub(crate) const APPLIANCE_LAN: [&str; 2] = ["fd00:137:1::1", "fd00:137:2::1"];
/// The uplink's SLAAC address must be there (RS answered, DAD passed) within this.
const SLAAC_BOUND: Duration = Duration::from_secs(60);
const PINGS: u32 = 3;
/// Where the internet's web server listens.
const WEB_PORT: u16 = 8080;
/// The uplink's forwarded port (`forward uplink tcp port 8443 to alpha port 8080`).
const FORWARD_PORT: u16 = 8443;
/// Where alpha's forwarded web server listens.
const FORWARDED_PORT: u16 = 8080;

/// `text` as an IPv6 address (a constant of these suites).
pub(crate) fn v6(text: &str) -> Ipv6Address {
    text.parse().expect("an IPv6 address")
}

/// The appliance between an IPv6 internet and two dual-stack clients (the hostile suite
/// boots it too).
pub(crate) struct Ipv6Lab {
    pub(crate) vm: Vm,
    _radvd: Radvd,
    pub(crate) uplink: TestHost,
    pub(crate) alpha: TestHost,
    pub(crate) beta: TestHost,
}

impl Ipv6Lab {
    /// Boots it, or `None` when `test` must be skipped (not root).
    pub(crate) fn boot(test: &str) -> Outcome<Option<Ipv6Lab>> {
        Ipv6Lab::boot_with(test, &[v6(ROUTER)])
    }

    /// [`Ipv6Lab::boot`] with radvd naming `resolvers` (RDNSS; none: no option).
    fn boot_with(test: &str, resolvers: &[Ipv6Address]) -> Outcome<Option<Ipv6Lab>> {
        if !require_root(test)? {
            return Ok(None);
        }
        let uplink = TestHost::create()?;
        let alpha = TestHost::create()?;
        let beta = TestHost::create()?;
        let vm = start_appliance(IPV6, &[&uplink, &alpha, &beta])?;
        let radvd = serve_ipv6_internet(&uplink, resolvers)?;
        for (host, nic, address) in [(&alpha, 1u8, ALPHA), (&beta, 2, BETA)] {
            address_client(host, nic, address, APPLIANCE_LAN[usize::from(nic) - 1])?;
        }
        let lab = Ipv6Lab {
            vm,
            _radvd: radvd,
            uplink,
            alpha,
            beta,
        };
        wait_for_server(&lab.vm, &lab.alpha)?;
        Ok(Some(lab))
    }

    /// The appliance's SLAAC address on the uplink, as the uplink host's neighbour table
    /// knows it.
    pub(crate) fn appliance_uplink_address(&self) -> Outcome<Ipv6Address> {
        let output = self.uplink.run_checked("ip", &["-6", "neigh", "show"])?;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        text.lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter_map(|address| address.parse::<Ipv6Address>().ok())
            .find(|a| Ipv6Cidr::new(v6(UPLINK_PREFIX), 64).contains_addr(a))
            .ok_or_else(|| Failure::new(format!("no appliance address in:\n{text}")))
    }
}

/// Starts the appliance built as `variant` on q35, one NIC per host in order (the uplink
/// first), and waits until it is ready.
pub(crate) fn start_appliance(variant: KernelVariant, hosts: &[&TestHost]) -> Outcome<Vm> {
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, hosts.len());
    spec.variant = variant;
    spec.nics = hosts
        .iter()
        .map(|host| NicWiring::Tap(host.tap().to_string()))
        .collect();
    let vm = Vm::start(spec)?;
    vm.wait_ready()?;
    Ok(vm)
}

/// Makes `uplink` (its tap opened by the appliance) the IPv6 internet: the router's and
/// the server's addresses, and radvd advertising the uplink's prefix, itself as default
/// router and as resolver.
pub(crate) fn serve_ipv6_internet(uplink: &TestHost, resolvers: &[Ipv6Address]) -> Outcome<Radvd> {
    uplink.attach(Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 2), 24))?;
    uplink.add_ipv6(Ipv6Cidr::new(v6(ROUTER), 64))?;
    uplink.add_ipv6(Ipv6Cidr::new(v6(SERVER), 128))?;
    let prefix = Ipv6Cidr::new(v6(UPLINK_PREFIX), 64);
    Radvd::start(uplink, &RaPlan::router(prefix, resolvers))
}

/// Addresses the client on `nic` (its tap opened by the appliance): `10.137.<nic>.2/24`
/// and `address`/64, with the appliance's `gateway` as its IPv6 default router.
pub(crate) fn address_client(host: &TestHost, nic: u8, address: &str, gateway: &str) -> Outcome {
    host.attach(Ipv4Cidr::new(Ipv4Address::new(10, 137, nic, 2), 24))?;
    host.add_ipv6(Ipv6Cidr::new(v6(address), 64))?;
    host.run_checked("ip", &["-6", "route", "add", "default", "via", gateway])
        .map(|_| ())
}

/// Waits until a ping from `client` reaches the server: the uplink has its SLAAC address
/// and its router.
pub(crate) fn wait_for_server(vm: &Vm, client: &TestHost) -> Outcome {
    let deadline = Instant::now() + SLAAC_BOUND;
    loop {
        let summary = client.ping6(v6(SERVER), 1)?;
        if summary.received == 1 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "no IPv6 path to {SERVER} within {SLAAC_BOUND:?} (SLAAC on the uplink?):\n{}\nconsole:\n{}",
                summary.output,
                vm.console().transcript()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Fails unless a drop line containing every one of `words` appears on the console within
/// 15 s.
pub(crate) fn wait_for_drop_line(vm: &Vm, what: &str, words: &[&str]) -> Outcome {
    wait_for_drop_text(vm.console(), what, Duration::from_secs(15), |line| {
        words.iter().all(|word| line.contains(word))
    })
    .map(|_| ())
}

/// Fails unless all of a few `ping -6 target` from `host` are answered.
pub(crate) fn pings_all(host: &TestHost, target: &str) -> Outcome {
    let summary = host.ping6(v6(target), PINGS)?;
    ensure(summary.received == PINGS, || {
        format!(
            "ping -6 {target} from {}: {} of {} replies\n{}",
            host.namespace(),
            summary.received,
            summary.transmitted,
            summary.output
        )
    })
}

fn pings_none(host: &TestHost, target: &str, source: Option<&str>) -> Outcome {
    let mut args = vec!["-6", "-n", "-c", "2", "-i", "0.3", "-w", "3"];
    if let Some(source) = source {
        args.extend(["-I", source]);
    }
    args.push(target);
    let output = host.run("ping", &args)?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    ensure(
        text.contains(" 0 received") || text.contains("0 packets received"),
        || {
            format!(
                "expected no reply to ping -6 {target} from {}:\n{text}",
                host.namespace()
            )
        },
    )
}

#[test]
fn a_dual_stack_client_reaches_an_ipv6_server_with_ping_curl_and_iperf3_masqueraded() -> Outcome {
    let Some(lab) = Ipv6Lab::boot(
        "a_dual_stack_client_reaches_an_ipv6_server_with_ping_curl_and_iperf3_masqueraded",
    )?
    else {
        return Ok(());
    };
    pings_all(&lab.alpha, SERVER)?;
    pings_all(&lab.beta, SERVER)?;
    pings_all(&lab.alpha, APPLIANCE_LAN[0])?;
    let nat_address = lab.appliance_uplink_address()?;

    // curl to a web server on the internet, which answers with the peer it sees: the
    // appliance's uplink address, never the client's.
    let server = SocketAddr::new(v6(SERVER).into(), WEB_PORT);
    let _web = WebServer::start(lab.uplink.namespace(), server, INTERNET_WEB_SERVER)?;
    let seen = greeting(&lab.alpha, &url(server.ip(), WEB_PORT, "/"))?;
    ensure(seen.peer.ip() == IpAddr::V6(nat_address), || {
        format!(
            "curl {server} from alpha: the server saw {}, expected the appliance's {nat_address}",
            seen.peer
        )
    })?;

    // iperf3 -6: a short TCP transfer (PMTU discovery through the 1,280-byte uplink).
    let iperf_server = lab
        .uplink
        .spawn("iperf3", &["-s", "-1", "-B", SERVER, "-p", "5201"])?;
    let iperf_server = Background::new("iperf3 -s on the uplink", iperf_server);
    std::thread::sleep(Duration::from_millis(800));
    let run = lab.alpha.run(
        "iperf3",
        &[
            "-6",
            "-c",
            SERVER,
            "-p",
            "5201",
            "-t",
            "2",
            "-J",
            "--connect-timeout",
            "10000",
        ],
    )?;
    let report = String::from_utf8_lossy(&run.stdout).to_string();
    ensure(
        run.status.success() && report.contains("\"sum_received\""),
        || {
            format!(
                "iperf3 -6 from alpha failed:\n{report}\n{}",
                String::from_utf8_lossy(&run.stderr)
            )
        },
    )?;
    drop(iperf_server);
    Ok(())
}

#[test]
fn ipv6_isolation_spoofing_rogue_ras_inbound_and_packet_too_big() -> Outcome {
    let Some(lab) = Ipv6Lab::boot("ipv6_isolation_spoofing_rogue_ras_inbound_and_packet_too_big")?
    else {
        return Ok(());
    };
    // Isolation: one client never reaches the other.
    pings_none(&lab.alpha, BETA, None)?;
    // Nothing inbound: the internet cannot ping the appliance's uplink address.
    let nat_address = lab.appliance_uplink_address()?;
    pings_none(&lab.uplink, &nat_address.to_string(), None)?;
    // The one way in is the port forward, over IPv6 as over IPv4: the uplink's port 8443
    // is alpha's web server, which sees the internet's address; alpha's own address stays
    // closed.
    let _alpha_web = WebServer::start(
        lab.alpha.namespace(),
        SocketAddr::new(v6(ALPHA).into(), FORWARDED_PORT),
        "alpha",
    )?;
    let seen = greeting(&lab.uplink, &url(nat_address, FORWARD_PORT, "/"))?;
    ensure(seen.server == "alpha" && seen.peer.ip().is_ipv6(), || {
        format!("curl [{nat_address}]:{FORWARD_PORT} from the internet: {seen:?}, expected alpha's server")
    })?;
    // Even routed to the appliance, alpha's own address is closed to the internet.
    let appliance = nat_address.to_string();
    lab.uplink.run_checked(
        "ip",
        &["-6", "route", "add", "fd00:137:1::/64", "via", &appliance],
    )?;
    let direct = curl(
        &lab.uplink,
        &url(v6(ALPHA), FORWARDED_PORT, "/"),
        Duration::from_secs(2),
        Duration::from_secs(2),
    )?;
    ensure(direct.outcome == Fetch::TimedOut, || {
        format!("alpha's own address answered the internet: {direct:?}")
    })?;
    // A spoofed source (outside alpha's prefix) goes nowhere, and is logged.
    lab.alpha
        .add_ipv6(Ipv6Cidr::new(v6("2001:db8:99::5"), 128))?;
    pings_none(&lab.alpha, SERVER, Some("2001:db8:99::5"))?;
    wait_for_drop_line(
        &lab.vm,
        "the spoofed source logged",
        &["spoofed", "2001:db8:99::5"],
    )?;
    // (Linux would prefer that global address as the source from now on.)
    let device = lab.alpha.tap().to_string();
    lab.alpha.run_checked(
        "ip",
        &["-6", "addr", "del", "2001:db8:99::5/128", "dev", &device],
    )?;
    // A rogue router advertisement from a client is refused (RA guard).
    let rogue = Radvd::start(
        &lab.alpha,
        &RaPlan::router(Ipv6Cidr::new(v6("2001:db8:bad::"), 64), &[]),
    )?;
    wait_for_drop_line(&lab.vm, "the rogue RA refused", &["ra-guard"])?;
    drop(rogue);
    // Still routed the same way.
    pings_all(&lab.alpha, SERVER)?;
    // Packet too big: 1,400 bytes do not fit the 1,280-byte uplink; the client hears it.
    let output = lab.alpha.run(
        "ping",
        &[
            "-6", "-n", "-c", "2", "-i", "0.5", "-w", "5", "-s", "1400", "-M", "do", SERVER,
        ],
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure(
        text.contains("mtu=1280") || text.contains("mtu = 1280") || text.contains("Packet too big"),
        || format!("expected a packet-too-big with MTU 1280:\n{text}"),
    )?;
    Ok(())
}

/// Fails unless `dig @appliance` (an IPv6 address of the appliance) from `host` gets
/// [`WEB_SERVER_NAME`]'s `answer`, from the address it asked, over UDP and over TCP.
fn answered_over_udp_and_tcp(host: &TestHost, appliance: &str, answer: Ipv4Address) -> Outcome {
    for transport in [DigTransport::Udp, DigTransport::Tcp] {
        let got = dig_at(host, IpAddr::V6(v6(appliance)), WEB_SERVER_NAME, transport)?;
        ensure(
            got.status == "NOERROR"
                && got.addresses == [answer]
                && got.server.starts_with(&format!("{appliance}#53")),
            || {
                format!(
                    "dig @{appliance} {WEB_SERVER_NAME} over {transport:?} from {}: {got:?}, expected NOERROR with {answer} from {appliance}#53",
                    host.namespace()
                )
            },
        )?;
    }
    Ok(())
}

#[test]
fn dns_asked_of_the_appliances_ipv6_address_is_answered_by_the_advertised_resolver() -> Outcome {
    let Some(lab) = Ipv6Lab::boot(
        "dns_asked_of_the_appliances_ipv6_address_is_answered_by_the_advertised_resolver",
    )?
    else {
        return Ok(());
    };
    // The resolver radvd advertises (RDNSS), which the appliance learned with its SLAAC
    // address: it knows one name, whose answer only it can give.
    let answer = Ipv4Address::new(198, 51, 100, 80);
    let resolver = DnsServer::start(
        lab.uplink.namespace(),
        SocketAddr::new(IpAddr::V6(v6(ROUTER)), DNS_PORT),
        vec![(WEB_SERVER_NAME.to_string(), answer)],
    )?;
    let nat_address = lab.appliance_uplink_address()?;
    for (host, appliance) in [
        (&lab.alpha, APPLIANCE_LAN[0]),
        (&lab.beta, APPLIANCE_LAN[1]),
    ] {
        answered_over_udp_and_tcp(host, appliance, answer)?;
    }
    let missing = dig_at(
        &lab.alpha,
        IpAddr::V6(v6(APPLIANCE_LAN[0])),
        "nowhere.moat.test",
        DigTransport::Udp,
    )?;
    ensure(missing.status == "NXDOMAIN", || {
        format!(
            "dig @{} nowhere.moat.test: {missing:?}, expected the resolver's NXDOMAIN",
            APPLIANCE_LAN[0]
        )
    })?;
    // Every query reached the resolver over the client's transport, from the appliance's
    // uplink address (redirected, then masqueraded): two clients, two transports, and the
    // unknown name.
    let queries = resolver.queries();
    let from_appliance = |transport| {
        queries
            .iter()
            .filter(|q| {
                q.name == WEB_SERVER_NAME
                    && q.transport == transport
                    && q.peer.ip() == IpAddr::V6(nat_address)
            })
            .count()
    };
    ensure(
        from_appliance(DnsTransport::Udp) >= 2
            && from_appliance(DnsTransport::Tcp) >= 2
            && queries
                .iter()
                .all(|q| q.peer.ip() == IpAddr::V6(nat_address)),
        || {
            format!(
                "expected (at least) two UDP and two TCP queries for {WEB_SERVER_NAME}, all from the appliance's {nat_address}; the resolver saw {queries:?}"
            )
        },
    )
}

#[test]
fn dns_asked_of_the_appliances_ipv6_address_crosses_to_the_ipv4_resolver() -> Outcome {
    // radvd names no resolver: the uplink knows only its static IPv4 one (10.0.2.2), and
    // IPv6 queries to the appliance cross to it.
    let Some(lab) = Ipv6Lab::boot_with(
        "dns_asked_of_the_appliances_ipv6_address_crosses_to_the_ipv4_resolver",
        &[],
    )?
    else {
        return Ok(());
    };
    let answer = Ipv4Address::new(198, 51, 100, 81);
    let resolver = DnsServer::start(
        lab.uplink.namespace(),
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, 2)), DNS_PORT),
        vec![(WEB_SERVER_NAME.to_string(), answer)],
    )?;
    answered_over_udp_and_tcp(&lab.alpha, APPLIANCE_LAN[0], answer)?;
    // Both reached the IPv4 resolver over the client's transport, from the appliance's
    // IPv4 uplink address.
    let queries = resolver.queries();
    let uplink = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, 15));
    let seen = |transport| {
        queries
            .iter()
            .any(|q| q.name == WEB_SERVER_NAME && q.transport == transport && q.peer.ip() == uplink)
    };
    ensure(seen(DnsTransport::Udp) && seen(DnsTransport::Tcp), || {
        format!("expected a UDP and a TCP query from {uplink}; the resolver saw {queries:?}")
    })
}
