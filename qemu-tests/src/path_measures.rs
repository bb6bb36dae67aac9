//! The measures the benchmarks run over a path from a client namespace to the internet
//! server ([`INTERNET_SERVER`], or [`INTERNET_SERVER6`] over IPv6) — through a firewall VM,
//! or over the [`DirectLink`] baseline — each run the same way on every path:
//!
//! - TCP throughput one way and the other (`iperf3`, one stream; `--reverse` for the server
//!   sending);
//! - UDP throughput (`iperf3 --udp`, 1400-byte datagrams, unlimited rate: what arrives);
//! - the small-packet UDP rate (18-byte payloads, the least iperf3 sends: 64-byte frames
//!   over IPv4, 84-byte frames over IPv6's 40-byte header; received packets per second);
//! - the ping round-trip time (mean);
//! - new TCP connections per second ([`crate::connection_rate`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smoltcp::wire::Ipv4Cidr;

use crate::addressing::{
    appliance_address, appliance_address6, host_address, INTERNET_SERVER, INTERNET_SERVER6,
};
use crate::client_tools::parse_round_trip;
use crate::connection_rate;
use crate::dual_stack::{address_client6, hold_internet_server6};
use crate::forwarding_ruleset::{ALPHA_NIC, IPERF_PORT};
use crate::iperf::{IperfLoad, IperfRun, IperfServer};
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// UDP payload of the throughput measure: a 1428-byte IP packet, under the 1500-byte MTU.
const UDP_LENGTH: usize = 1400;
/// UDP payload that makes a 64-byte Ethernet frame (14 + 20 + 8 + 18 + 4-byte FCS).
const SMALL_UDP_LENGTH: usize = 18;
/// Pings per second (`ping -i 0.2`, as `TestHost::ping` sends them).
const PINGS_PER_SECOND: u32 = 5;
/// The port of the internet server's connection sink.
pub const CONNECTION_PORT: u16 = 5300;
/// Client threads opening connections at once.
const CONNECTION_WORKERS: usize = 4;

/// One measure, run the same way on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// TCP, client to server.
    TcpThroughput,
    /// TCP, server to client.
    TcpThroughputReverse,
    /// UDP, 1400-byte datagrams.
    UdpThroughput,
    /// UDP, 18-byte payloads (64-byte frames over IPv4).
    SmallPacketRate,
    /// Ping round trip.
    PingRoundTrip,
    /// New TCP connections per second.
    ConnectionRate,
}

/// A measured figure, and anything worth saying about it (losses).
#[derive(Debug, Clone)]
pub struct Figure {
    /// The value, in the measure's unit (bit/s, packets/s, ms, connections/s).
    pub value: f64,
    /// Losses, failures, spread.
    pub note: Option<String>,
}

impl Measure {
    /// The measures of `scripts/bench forward`.
    pub const FORWARD: [Measure; 5] = [
        Measure::TcpThroughput,
        Measure::TcpThroughputReverse,
        Measure::UdpThroughput,
        Measure::SmallPacketRate,
        Measure::PingRoundTrip,
    ];

    /// How the measure is called in tables.
    pub fn name(self) -> &'static str {
        match self {
            Measure::TcpThroughput => "TCP throughput",
            Measure::TcpThroughputReverse => "TCP throughput, server to client",
            Measure::UdpThroughput => "UDP throughput (1400 B)",
            Measure::SmallPacketRate => "UDP 64-byte frames",
            Measure::PingRoundTrip => "ping round trip (mean)",
            Measure::ConnectionRate => "new TCP connections",
        }
    }

    /// How the measure is called in tables when run to `server`: [`Measure::name`], with
    /// the frame size of small packets over IPv6.
    pub fn name_to(self, server: IpAddr) -> &'static str {
        match (self, server) {
            (Measure::SmallPacketRate, IpAddr::V6(_)) => "UDP 84-byte frames (18 B data)",
            _ => self.name(),
        }
    }

    /// Whether a bigger figure is better (all but the round trip).
    pub fn higher_is_better(self) -> bool {
        self != Measure::PingRoundTrip
    }

    /// `value` with its unit.
    pub fn format(self, value: f64) -> String {
        match self {
            Measure::TcpThroughput | Measure::TcpThroughputReverse | Measure::UdpThroughput => {
                format!("{:.1} Mbit/s", value / 1e6)
            }
            Measure::SmallPacketRate => format!("{:.1} kpps", value / 1e3),
            Measure::PingRoundTrip => format!("{value:.3} ms"),
            Measure::ConnectionRate => format!("{value:.0} /s"),
        }
    }

    /// Runs the measure from `client` to the internet server at [`INTERNET_SERVER`].
    pub fn run(self, client: &TestHost, seconds: u32) -> Outcome<Figure> {
        self.run_to(client, INTERNET_SERVER.into(), seconds)
    }

    /// Runs the measure from `client` to the internet server at `server`
    /// ([`INTERNET_SERVER`] or [`INTERNET_SERVER6`]: the family the measure runs over).
    pub fn run_to(self, client: &TestHost, server: IpAddr, seconds: u32) -> Outcome<Figure> {
        let iperf = |load| IperfRun {
            server: SocketAddr::new(server, IPERF_PORT),
            seconds,
            load,
        };
        match self {
            Measure::TcpThroughput | Measure::TcpThroughputReverse => {
                let load = if self == Measure::TcpThroughput {
                    IperfLoad::Tcp
                } else {
                    IperfLoad::TcpReverse
                };
                let report = iperf(load).run(client)?;
                Ok(Figure {
                    value: report.received_bits_per_second(),
                    note: None,
                })
            }
            Measure::UdpThroughput | Measure::SmallPacketRate => {
                let length = if self == Measure::UdpThroughput {
                    UDP_LENGTH
                } else {
                    SMALL_UDP_LENGTH
                };
                let report = iperf(IperfLoad::Udp {
                    bits_per_second: 0,
                    length,
                })
                .run(client)?;
                let (received, lost) = (
                    report.received_packets.unwrap_or_default(),
                    report.lost_packets.unwrap_or_default(),
                );
                let loss = 100.0 * lost as f64 / (received + lost).max(1) as f64;
                let value = if self == Measure::UdpThroughput {
                    report.received_bits_per_second()
                } else {
                    report.received_packets_per_second().unwrap_or_default()
                };
                Ok(Figure {
                    value,
                    note: Some(format!("{received} datagrams received, {loss:.1}% lost")),
                })
            }
            Measure::PingRoundTrip => {
                let count = seconds * PINGS_PER_SECOND;
                let summary = match server {
                    IpAddr::V4(server) => client.ping(server, count)?,
                    IpAddr::V6(server) => client.ping6(server, count)?,
                };
                let round_trip = parse_round_trip(&summary.output).ok_or_else(|| {
                    Failure::new(format!(
                        "ping printed no round-trip times:\n{}",
                        summary.output
                    ))
                })?;
                Ok(Figure {
                    value: round_trip.avg,
                    note: Some(format!(
                        "{} of {} replies, min {:.3} ms, max {:.3} ms",
                        summary.received, summary.transmitted, round_trip.min, round_trip.max
                    )),
                })
            }
            Measure::ConnectionRate => {
                let rate = connection_rate::measure(
                    client.namespace(),
                    SocketAddr::new(server, CONNECTION_PORT),
                    CONNECTION_WORKERS,
                    Duration::from_secs(seconds.into()),
                )?;
                Ok(Figure {
                    value: rate.per_second(),
                    note: Some(format!(
                        "{} connections, {} failed attempts",
                        rate.completed, rate.failed
                    )),
                })
            }
        }
    }
}

/// The baseline: a client namespace and a server namespace joined by a veth pair, addressed
/// like the appliance's client network in both families (the server plays the client's
/// gateway and holds the internet server's addresses), with an iperf3 server on each
/// address. (No connection rate: without a
/// firewall there is no state to create, and the rate is whatever the host's scheduler
/// gives two processes on a loaded machine.)
pub struct DirectLink {
    _iperf: [IperfServer; 2],
    /// The client end.
    pub client: TestHost,
    _server: TestHost,
}

impl DirectLink {
    /// Creates the pair and starts the servers.
    pub fn start() -> Outcome<DirectLink> {
        let (client, server) = TestHost::veth_pair()?;
        let network = appliance_address(ALPHA_NIC);
        client.attach(Ipv4Cidr::new(host_address(ALPHA_NIC), network.prefix_len()))?;
        server.attach(network)?;
        server.run_checked(
            "ip",
            &["addr", "add", &format!("{INTERNET_SERVER}/32"), "dev", "lo"],
        )?;
        let gateway = network.address().to_string();
        client.run_checked("ip", &["route", "add", "default", "via", &gateway])?;
        address_client6(&client, ALPHA_NIC)?;
        server.add_ipv6(appliance_address6(ALPHA_NIC))?;
        hold_internet_server6(&server)?;
        let iperf = [
            IperfServer::start(&server, SocketAddr::new(INTERNET_SERVER.into(), IPERF_PORT))?,
            IperfServer::start(
                &server,
                SocketAddr::new(INTERNET_SERVER6.into(), IPERF_PORT),
            )?,
        ];
        Ok(DirectLink {
            _iperf: iperf,
            client,
            _server: server,
        })
    }
}
