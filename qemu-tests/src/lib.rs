//! End-to-end harness for Moat: boots images in QEMU and talks to them like their users do.
//!
//! **Owns**: the end-to-end suite's hosts, topologies and readers of the console. It imports
//! `image` (the same QEMU command lines `image run` makes) and the data plane only for its
//! test packet library (`dataplane::testutil`); what it checks, it checks from the outside:
//! frames on the wire and lines on the console.
//!
//! - [`vm::Vm`] starts an appliance from a [`vm::VmSpec`] (machine, boot path, NICs, kernel
//!   build), reads its serial console with timeouts ([`console::Console`]), presses its power
//!   button over QMP, and always kills QEMU and removes its sockets when dropped, printing the
//!   console for a failing test.
//! - [`segment_host::SegmentHost`] is a rootless host on one NIC: raw Ethernet frames over a
//!   unix datagram socket, built and parsed with `smoltcp::wire` by the project's one test
//!   packet library, `dataplane::testutil`.
//! - [`test_host::TestHost`] is a real Linux host: a network namespace with a tap device
//!   (root only), for `ping` and friends.
//! - [`addressing`] is the one place the appliance's and the test hosts' addresses live.
//!
//! Forwarding, with the test ruleset [`forwarding_ruleset`] (an uplink, two client networks):
//!
//! - [`segmented_appliance::SegmentedAppliance`]: every NIC a rootless segment host; exact
//!   frames in and out (`dataplane::testutil::datagram`: TCP, UDP and ICMP built and parsed
//!   with every checksum verified, compared field by field), absence proven with a marker
//!   packet;
//! - [`tap_appliance::TapAppliance`]: every NIC a tap into a namespace (root); the uplink's
//!   namespace plays the internet ([`uplink_services`]: [`web_server`], [`dns_server`],
//!   [`iperf`]), clients run `curl`, `dig`, `ping` ([`client_tools`]) and a raw-socket SYN
//!   flood ([`syn_flood`]); in-process servers open their sockets inside namespaces through
//!   [`netns`];
//! - rootless floods of exact frames into a NIC ([`frame_flood`]);
//! - the console's drop log ([`drop_log`]), stats line ([`stats_line`]) and counter lines
//!   ([`counter_lines`]), parsed; the packet capture read with `tcpdump -r` ([`pcap_file`]).
//!
//! The uplink addressed by DHCP ([`dhcp_uplink::DhcpUplinkAppliance`]): a real `dnsmasq`
//! ([`dnsmasq`]) in the uplink's namespace, started late and restarted as another network at
//! another MAC; `tcpdump` ([`packet_capture`]) watches what leaves the uplink.
//!
//! IPv6: a real `radvd` ([`radvd`]) in the uplink's namespace advertises a prefix, itself as
//! router and its resolvers (RDNSS) for the appliance's SLAAC; the same module gives a
//! [`test_host::TestHost`] its IPv6 side (addresses, Linux's own SLAAC, `ping -6`).
//!
//! The soak ([`soak`]) floods a [`tap_appliance::TapAppliance`] ([`flood`] frames put on a
//! tap by [`packet_sender`], counted by [`link_stats`]) while a client's `curl` download of
//! an endless, verifiable stream ([`stream_server`], [`download`]) goes on; a hung appliance
//! is described from outside ([`hang_report`], with [`kernel_symbols`]).
//!
//! libvirt ([`libvirt_domain`]) runs the domain XML `image libvirt-xml` writes, as users do.
//!
//! The QEMU command line itself comes from the `image` crate, the same code `image run` uses.

pub mod accel;
pub mod addressing;
pub mod background;
pub mod boot_report;
pub mod client_tools;
pub mod compare;
pub mod connection_rate;
pub mod console;
pub mod counter_lines;
pub mod daemon;
pub mod dhcp_clients;
pub mod dhcp_uplink;
pub mod dns_server;
pub mod dnsmasq;
pub mod download;
pub mod drop_log;
pub mod dual_stack;
pub mod expect;
pub mod failure;
pub mod flood;
pub mod forwarding_ruleset;
pub mod frame_flood;
pub mod hang_report;
pub mod iperf;
pub mod kernel_symbols;
pub mod kernels;
pub mod leftovers;
pub mod libvirt_domain;
pub mod link_stats;
pub mod linux_vm;
pub mod netns;
pub mod notice;
pub mod packet_capture;
pub mod packet_sender;
pub mod path_measures;
pub mod pcap_file;
pub mod qemu_process;
pub mod qmp;
pub mod radvd;
pub mod segment_host;
pub mod segmented_appliance;
pub mod service;
pub mod soak;
pub mod stats_line;
pub mod stream_server;
pub mod syn_flood;
pub mod tap_appliance;
pub mod tap_fd;
pub mod test_host;
pub mod uplink_services;
pub mod vm;
pub mod web_server;

pub use failure::{ensure, Failure, Outcome};
