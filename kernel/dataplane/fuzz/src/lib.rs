//! The data plane's fuzz target, as a library: a [`Scenario`] (derived from the fuzzer's
//! bytes with `arbitrary`) is a ruleset choice and a sequence of steps — structured frames
//! (Ethernet, ARP, IPv4 with options and fragments, TCP/UDP/ICMP/SCTP) sent on any NIC by
//! hosts of that NIC or by spoofers, replies and ICMP errors quoting frames the appliance
//! sent earlier, broken headers, raw bytes, and clock steps — played through
//! `Appliance::receive` and `Appliance::poll` ([`run`]).
//!
//! Every frame that comes out is checked ([`oracle`]):
//! - it is a well-formed Ethernet frame from the appliance's MAC; an IPv4 packet has a
//!   valid header checksum, and (unless the scenario sent broken transport checksums) valid
//!   TCP/UDP/ICMP checksums; an IPv4 unicast never goes to a link-layer broadcast;
//! - where the ruleset masquerades every client network, no client's private address leaves
//!   the uplink as a source (nor inside a forwarded ICMP error's quote);
//! - a packet the policy decided and the data plane forwarded is one the reference matcher
//!   (`dataplane::policy::reference`, the linear walk) passes, on a key that is the packet's
//!   own (addresses, protocol, ports, NICs); a packet forwarded without a decision belongs
//!   to a flow seen before (an earlier first packet, or a reply to a frame the appliance
//!   sent), and a related ICMP error quotes a packet the appliance sent;
//! - the bounded tables stay within their bounds (`Appliance::footprint`).
//!
//! A violation panics with the scenario's history, which is what the fuzzer reports.

mod build;
mod oracle;
mod scenario;
mod world;

pub use scenario::*;

use dataplane::sink::RecordingSink;
use smoltcp::time::Duration;

use build::Builder;
use oracle::Oracle;
use world::World;

/// Most steps played from one input (keeps each execution short).
const MAX_STEPS: usize = 64;

/// Plays `scenario` and checks every frame that comes out. Panics on a violation.
pub fn run(scenario: &Scenario) {
    let mut world = World::boot(scenario.ruleset, scenario.small_table);
    let mut oracle = Oracle::new(&world);
    // The hosts every NIC starts with answer ARP, so forwarded packets leave at once.
    for (nic, frame) in world.introductions() {
        world.receive(nic, frame, &mut oracle);
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
}
