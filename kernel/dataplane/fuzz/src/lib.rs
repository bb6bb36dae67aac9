//! The data plane's fuzz target, as a library: a [`Scenario`] (derived from the fuzzer's
//! bytes with `arbitrary`) is a ruleset choice and a sequence of steps — structured frames
//! (Ethernet, ARP, IPv4 with options and fragments, TCP/UDP/ICMP/SCTP; IPv6 with
//! extension-header chains longer than the appliance's bound, routing headers of any type,
//! tiny, overlapping and RFC 7112-breaking fragments; neighbour discovery: router and
//! neighbour solicitations and advertisements, redirects) sent on any NIC by hosts of that
//! NIC or by spoofers, replies and ICMP/ICMPv6 errors quoting frames the appliance sent
//! earlier, broken headers, raw bytes, and clock steps — played through
//! `Appliance::receive` and `Appliance::poll` ([`run`]), under IPv4-only and dual-stack
//! rulesets (NAT66 of unique local clients, a SLAAC uplink, routed prefixes, a 1280-byte
//! uplink).
//!
//! Every frame that comes out is checked ([`oracle`]):
//! - it is a well-formed Ethernet frame from the appliance's MAC; an IPv4 packet has a
//!   valid header checksum, and (unless the scenario sent broken transport checksums) an
//!   unfragmented IPv4 or IPv6 packet valid TCP/UDP/ICMP/ICMPv6 checksums; an IPv4 unicast
//!   never goes to a link-layer broadcast, an IPv6 multicast only to its group's MAC;
//! - where the ruleset masquerades every client network, no client's private address
//!   (IPv4, or the unique local IPv6 prefix) leaves the uplink as a source (nor inside a
//!   forwarded ICMP/ICMPv6 error's quote);
//! - a packet the policy decided and the data plane forwarded is one the reference matcher
//!   (`dataplane::policy::reference`, the linear walk) passes, on a key that is the packet's
//!   own (addresses, protocol after the extension chain, ports, NICs); a packet forwarded
//!   without a decision belongs to a flow seen before (an earlier first packet, or a reply
//!   to a frame the appliance sent), and a related ICMP error quotes a packet the
//!   appliance sent;
//! - no link-local source or destination, no multicast and no neighbour discovery
//!   message is forwarded; the appliance advertises neighbours only for its own addresses
//!   and sends router advertisements only where the ruleset says `ra`; no frame changes a
//!   NIC's IPv6 addresses or router except a SLAAC uplink's own advertisements (a client's
//!   router advertisement is never acted on);
//! - the bounded tables (the IPv6 neighbour table included) stay within their bounds
//!   (`Appliance::footprint`).
//!
//! A violation panics with the scenario's history, which is what the fuzzer reports.

mod build;
mod build6;
mod oracle;
mod scenario;
mod world;

pub use oracle::Summary;
pub use scenario::*;

use dataplane::sink::RecordingSink;
use smoltcp::time::Duration;

use build::Builder;
use oracle::Oracle;
use world::World;

/// Most steps played from one input (keeps each execution short).
const MAX_STEPS: usize = 64;

/// Plays `scenario` and checks every frame that comes out; says what it made the
/// appliance do. Panics on a violation.
pub fn run(scenario: &Scenario) -> Summary {
    let mut world = World::boot(scenario.ruleset, scenario.small_table);
    let mut oracle = Oracle::new(&world);
    // The hosts every NIC starts with answer ARP, so forwarded packets leave at once.
    for (nic, frame) in world.introductions() {
        world.receive(nic, frame, &mut oracle);
    }
    if world.has_ipv6() {
        // A SLAAC uplink hears its router; then duplicate address detection runs its
        // course (a second), and the first IPv6 hosts of every NIC introduce themselves.
        world.advance(Duration::from_millis(0), &mut oracle);
        if let Some((nic, frame)) = world.router_advert() {
            world.receive(nic, frame, &mut oracle);
        }
        for _ in 0..3 {
            world.advance(Duration::from_secs(1), &mut oracle);
        }
        for (nic, frame) in world.introductions6() {
            world.receive(nic, frame, &mut oracle);
        }
    }
    for step in scenario.steps.iter().take(MAX_STEPS) {
        match step {
            Step::Advance { millis } => {
                world.advance(Duration::from_millis(u64::from(*millis)), &mut oracle)
            }
            Step::Wait { secs } => {
                world.advance(Duration::from_secs(u64::from(*secs % 128) + 1), &mut oracle)
            }
            step => {
                let Some((nic, frame, sound)) = Builder::new(&world, &oracle).frame(step) else {
                    continue;
                };
                if !sound {
                    oracle.taint();
                }
                world.receive(nic, frame, &mut oracle);
            }
        }
    }
    let mut sink = RecordingSink::default();
    world.poll(&mut sink);
    oracle.check_outputs(&world, None, &sink.frames);
    oracle.summary
}
