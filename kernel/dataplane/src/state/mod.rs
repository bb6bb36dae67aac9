//! The connection-state table: every flow the policy let through, found from either
//! direction in one lookup, tracked through its protocol, bounded in size.
//!
//! # What a state is
//! A state is created for the first packet of a flow that the policy passes. It records the
//! flow under two [`FlowTuple`]s: the *original* tuple (the initiator's packets as they
//! arrive on the ingress NIC, before NAT) and the *reply* tuple (the responder's packets as
//! they arrive on the egress NIC, after NAT — the reverse of the initiator's packets as they
//! leave). Both are filed in one hash index, so any packet of the flow, either way, finds its
//! state with one keyed hash (SipHash-1-3, keyed by the caller against hash flooding) and,
//! on average, under two probes. The translation NAT applies is implied by the two tuples
//! (see [`Translation`]).
//!
//! # How the pipeline uses it
//! ```text
//! parse -> anti-spoof -> table.lookup(in_nic, &summary, now)
//!   Hit(hit) | Related(hit):  hit.verdict is Err(reason)? drop, count reason.
//!                             nat::apply(bytes, &mut summary, &hit.translation)
//!                             the flow leaves through hit.egress_nic (next hop resolved
//!                             on that NIC: RouteTable::toward) -> forward
//!   Miss:  original = FlowTuple::of(&summary)        (None: cannot be tracked)
//!          translated = nat::port_forward(..) or nat::dns_redirect(..) or original
//!          route -> policy decides on the translated flow
//!          pass:  if nat::masquerade_rule(..) applies:
//!                     translated = masquerader.masquerade(&table, translated, nat_addr, now)?
//!                 flow = NewFlow { in_nic, out_nic, original, translated, rule, client }
//!                 table.insert(&flow, &summary, now)?        (Err(reason): drop, count, log)
//!                 nat::apply(bytes, &mut summary, &flow.translation()) -> forward
//! timer:  table.sweep(now, budget)
//! ```
//! A state is bound to its NICs: a packet of the original direction must arrive on the NIC
//! the flow came in on, a reply on the NIC it went out through; otherwise the hit says
//! [`StateDrop::WrongInterface`]. Packets addressed to the appliance's own address must be
//! looked up before they are handed to the local stack: replies to masqueraded flows and
//! ICMP errors about them are addressed to it.
//!
//! # Protocols
//! - TCP: only a SYN without ACK opens a state; segments are checked against the sequence
//!   windows of both peers (van Rooij / pf's `pf_tcp_track_full`); out-of-window segments
//!   and RSTs with the wrong sequence number come back as [`StateDrop::OutOfWindow`] and are
//!   counted. A SYN on the tuple of a connection that is over replaces its state.
//! - UDP, SCTP (keyed on its ports), ICMP echo and other protocols: pf's pseudo-states (only the initiator has sent /
//!   both have). An ICMP echo tuple says whether it carries requests or replies, so the far
//!   side's own echo requests never pass as replies.
//! - ICMP errors never have states of their own: [`StateTable::lookup`] finds the state of
//!   the packet they quote and returns [`Lookup::Related`], whose translation turns the
//!   quote and the error's addresses back into what the receiver knows. The error must be
//!   addressed to that packet's sender and arrive on the NIC the packet left through, and
//!   the quote must be a packet the flow can have carried: its sender has sent something,
//!   and a quoted TCP segment lies in its sender's window (pf's `pf_test_state_icmp`);
//!   otherwise the hit says [`StateDrop::QuoteNeverSent`] or
//!   [`StateDrop::QuoteOutOfWindow`]. Who may send an error (the flow's peer, or a router
//!   on its path) depends on routes: the appliance checks that. Fragments after the first
//!   have no ports: they miss.
//!
//! # Time
//! Each state expires a stage-dependent [`Timeouts`] after its last accepted packet (pf's
//! defaults, overridable). Expired states are removed when a lookup or insert meets them,
//! and by [`StateTable::sweep`], which examines a bounded number of slots per call.
//!
//! # Bounds
//! The capacity is fixed at construction and all memory for it is allocated then; the
//! lookup path never allocates. When the table is full, a flow that is not yet established
//! (TCP handshake incomplete, or no reply seen) is dropped to make room — Linux's early
//! drop — so a SYN flood cycles through half-open states while established flows keep
//! working. Which one is the biggest consumer's, never a quiet client's: every state is
//! charged to the source of its first packet ([`NewFlow::source`]: a neighbour on its
//! NIC, or the NIC's remote side as one consumer, divided by address), the consumer with
//! the most half-open states gives up its oldest if it holds more states than the
//! newcomer's, else the newcomer's own oldest goes (see `shares.rs`). When nothing may be
//! dropped, new flows are refused ([`Refused::TableFull`]). Per-rule, per-rule-and-source
//! and per-client limits from the ruleset are enforced with counts kept incrementally and
//! released when states die.
//!
//! # Memory
//! [`StateTable::memory_bytes`] gives the bytes a capacity costs, all allocated by
//! [`StateTable::new`]: on x86-64, 132 bytes per state for the state, its slot and its
//! free-list entry, 16–32 bytes of index (four to eight `u32` buckets per state, the
//! bucket count rounded up to a power of two) and 4 bytes for early drop's lists — 152
//! bytes per state at 65,536 states (9.5 MiB). On top come the limit counters, only for
//! flows under a limit, and the accounts of early drop: one per neighbour holding states
//! (40 bytes and a B-tree entry, freed with its last state) and 65 per NIC with a remote
//! side. The kernel should set aside a share of RAM for the table and size it with
//! [`StateTable::capacity_for`]: 16 MiB (a quarter of a 64 MiB guest) hold about 108,000
//! states.
//!
//! # Example
//! A client's UDP query leaves the uplink masqueraded, and the answer finds its way back:
//! ```
//! use dataplane::nat::{self, MasqueradeConfig, Masquerader};
//! use dataplane::packet::IpSummary;
//! use dataplane::state::{FlowTuple, Lookup, NewFlow, StateConfig, StateTable, Timeouts};
//! use dataplane::testutil::packets;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{IpAddress, Ipv4Address};
//!
//! let config = StateConfig { capacity: 1024, hash_key: [7; 16], timeouts: Timeouts::default() };
//! let mut table = StateTable::new(config);
//! let mut masquerader = Masquerader::new(MasqueradeConfig::seeded(42));
//! let uplink = IpAddress::from(Ipv4Address::new(10, 0, 2, 15));
//! let now = Instant::from_secs(1);
//!
//! // The first packet, from the client NIC (1) to the uplink (0).
//! let mut query = packets::udp([10, 137, 1, 10], 5353, [9, 9, 9, 9], 53, b"q");
//! let mut summary = IpSummary::parse(&query).unwrap();
//! assert_eq!(table.lookup(1, &summary, now), Lookup::Miss);
//! let original = FlowTuple::of(&summary).unwrap();
//! let translated = masquerader.masquerade(&table, original, uplink, now).unwrap();
//! let flow = NewFlow { translated, ..NewFlow::new(1, 0, original) };
//! table.insert(&flow, &summary, now).unwrap();
//! nat::apply(&mut query, &mut summary, &flow.translation());
//! assert_eq!(summary.src, uplink);
//!
//! // The answer arrives on the uplink, addressed to the appliance.
//! let mut answer = packets::udp([9, 9, 9, 9], 53, [10, 0, 2, 15], 5353, b"a");
//! let mut summary = IpSummary::parse(&answer).unwrap();
//! let Lookup::Hit(hit) = table.lookup(0, &summary, now) else { panic!("no state") };
//! assert_eq!((hit.egress_nic, hit.verdict), (1, Ok(())));
//! nat::apply(&mut answer, &mut summary, &hit.translation);
//! assert_eq!(summary.dst, Ipv4Address::new(10, 137, 1, 10).into());
//! assert!(packets::checksums_valid(&answer));
//! ```

mod buckets;
mod entry;
mod index;
mod limits;
mod shares;
mod slab;
mod stats;
mod table;
mod tcp;
mod timeouts;
mod tracking;
mod tuple;

pub use crate::nat::Translation;
pub use entry::StateInfo;
pub use limits::{ClientRef, LimitSource, RuleRef};
pub use stats::{ByProtocol, Refusals, Refused, StateStats};
pub use table::{Hit, Lookup, NewFlow, StateConfig, StateDrop, StateId, StateTable, MAX_CAPACITY};
pub use tcp::TcpState;
pub use timeouts::Timeouts;
pub use tracking::ProtocolState;
pub use tuple::{Direction, Echo, Endpoint, FlowTuple};
