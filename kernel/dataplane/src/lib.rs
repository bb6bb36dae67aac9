//! Moat's data plane: everything that touches packets, as portable `no_std` + `alloc` code.
//!
//! **Owns**: every decision about a packet — parsing and validation, anti-spoofing, ARP,
//! routing, the state table and NAT, the policy matcher, ICMP errors, the drop log — and
//! the compiled policy's model (the contract with the `rules` compiler). The kernel hands
//! received Ethernet frames in and takes frames to transmit out; time comes in as an
//! argument. That is what lets every path be unit-tested and benchmarked on the host with
//! real packet bytes, and what lets the compiler run a ruleset's tests through the very
//! same code ([`Appliance::receive_traced`]).
//!
//! **Must not import**: hardware or platform code (no `x86_64`, virtio, ACPI: the kernel
//! imports this crate, never the reverse), a ruleset parser (`rules` is a dev-dependency
//! only, for tests that compile real ruleset text), or anything `std`. Its dependencies are
//! `smoltcp` (wire formats and the local stack), `log` and `siphasher`. Host-only parts are
//! behind features: `codegen` (encoding a policy blob, building the matcher's index),
//! `reference` (the linear matcher tests compare against), `testutil` (the test packet
//! library).
//!
//! - [`appliance`]: the front door — [`Appliance::receive`] for each frame (the path of a
//!   packet, stage by stage, in its module documentation), [`Appliance::poll`] for timers.
//! - [`policy`]: the compiled ruleset (pure data, produced by the `rules` crate and decoded
//!   from the image's policy blob at boot) and the matcher that decides the first packet of
//!   each flow.
//! - [`arp`], [`neighbor`]: ARP and the neighbour table.
//! - [`local`]: the appliance's own IP stack (smoltcp) for traffic addressed to it.
//! - [`config`], [`sink`]: NIC configuration in, frames out.
//! - [`packet`]: parsing and validating an IPv4 packet once, at the edge; [`sctp`]: SCTP's
//!   common header, which `smoltcp::wire` lacks.
//! - [`rewrite`]: in-place field rewrites with incremental checksum updates.
//! - [`route`], [`antispoof`], [`proxy_arp`], [`fragment`], [`icmp_error`]: forwarding
//!   building blocks — routing, source checks, proxy ARP for Qubes-style clients, the
//!   fragment policy, ICMP errors and TCP resets; [`fragmenter`] splits packets too big for
//!   their egress MTU.
//! - [`state`], [`nat`]: connection tracking (TCP windows, pseudo-states, bounded table
//!   with early drop and limits) and address translation (masquerade, port forwards, DNS
//!   redirect, ICMP errors translated through their quote).
//! - [`drops`], [`ratelimit`]: drop reasons, counters, the rate-limited drop log;
//!   [`rule_counters`]: packets, bytes and states per rule.
//! - [`share`]: who a packet's source is, for the per-source share every shared resource
//!   gives (one client never hurts another); [`budget`]: a rate limit with a share per
//!   source (ICMP errors and resets, the drop log).
//! - [`checksum`]: incremental checksum updates (RFC 1624).
//! - [`offload`], [`segmenter`]: checksum and segmentation offload metadata (partial
//!   checksums, super-frames) as NICs hand it over, checked, kept across NAT, and finished
//!   in software where the egress NIC cannot take it; [`ring_depth`]: how deep a NIC's
//!   receive ring goes, from how the device uses it; [`transmit_wait`]: how long the main
//!   loop may wait on a NIC whose transmit ring is full.
//! - [`rng`]: the project's one seeded pseudo-random generator (NAT ports, and the host's
//!   generators and tests); [`keys`]: the appliance's secrets, one per purpose.
//! - [`console_queue`]: console lines waiting for the serial port, so printing never
//!   waits on the console's reader (the kernel's console drains it).
//! - `testutil` (feature `testutil`): the project's one test packet library.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod antispoof;
pub mod antispoof6;
pub mod appliance;
pub mod arp;
pub mod budget;
pub mod capture;
pub mod checksum;
pub mod config;
pub mod console_queue;
pub mod dhcp;
pub mod drops;
pub mod fragment;
pub mod fragmenter;
pub mod icmp_error;
pub mod icmp_error6;
pub mod ip_options;
pub mod ipv6;
pub mod keys;
pub mod local;
pub mod nat;
pub mod ndp;
pub mod neighbor;
pub mod offload;
pub mod packet;
pub mod policy;
pub mod proxy_arp;
pub mod ratelimit;
pub mod rewrite;
pub mod ring_depth;
pub mod rng;
pub mod route;
pub mod route6;
pub mod rule_counters;
pub mod sctp;
pub mod segmenter;
pub mod share;
pub mod sink;
pub mod state;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod transmit_wait;

pub use appliance::Appliance;
pub use config::{ApplianceConfig, NicConfig};
pub use sink::FrameSink;
