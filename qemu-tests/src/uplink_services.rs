//! The internet, as the real-client tests see it: servers in the uplink test host's
//! namespace, on addresses behind the appliance's gateway ([`INTERNET_SERVER`],
//! [`UPSTREAM_RESOLVER`]): a web server, the upstream DNS resolver and an iperf3 server.

use std::net::SocketAddrV4;

use crate::addressing::{INTERNET_SERVER, UPSTREAM_RESOLVER};
use crate::dns_server::DnsServer;
use crate::forwarding_ruleset::{IPERF_PORT, WEB_PORT};
use crate::iperf::IperfServer;
use crate::test_host::TestHost;
use crate::web_server::WebServer;
use crate::Outcome;

/// The name the upstream resolver knows: [`INTERNET_SERVER`]'s (a reserved `.test` name,
/// RFC 2606, so it never means anything outside the tests).
pub const WEB_SERVER_NAME: &str = "www.moat.test";
/// The name the internet web server gives in its greeting.
pub const INTERNET_WEB_SERVER: &str = "internet";
/// The DNS port.
pub const DNS_PORT: u16 = 53;

/// The uplink's servers, stopped when dropped.
pub struct UplinkServices {
    /// `http://198.51.100.80/`.
    pub web: WebServer,
    /// The upstream resolver on 198.51.100.53, UDP and TCP.
    pub dns: DnsServer,
    /// `iperf3` on 198.51.100.80.
    pub iperf: IperfServer,
}

impl UplinkServices {
    /// Gives `uplink` the internet's addresses (on its loopback device: the appliance reaches
    /// them through its gateway, the uplink host itself) and starts the servers.
    pub fn start(uplink: &TestHost) -> Outcome<UplinkServices> {
        for address in [INTERNET_SERVER, UPSTREAM_RESOLVER] {
            uplink.run_checked(
                "ip",
                &["addr", "add", &format!("{address}/32"), "dev", "lo"],
            )?;
        }
        let namespace = uplink.namespace();
        Ok(UplinkServices {
            web: WebServer::start(
                namespace,
                SocketAddrV4::new(INTERNET_SERVER, WEB_PORT),
                INTERNET_WEB_SERVER,
            )?,
            dns: DnsServer::start(
                namespace,
                SocketAddrV4::new(UPSTREAM_RESOLVER, DNS_PORT),
                vec![(WEB_SERVER_NAME.to_string(), INTERNET_SERVER)],
            )?,
            iperf: IperfServer::start(uplink, SocketAddrV4::new(INTERNET_SERVER, IPERF_PORT))?,
        })
    }
}
