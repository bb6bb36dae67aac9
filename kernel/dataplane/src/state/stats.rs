//! Why a state could not be created ([`Refused`]), and the table's counters
//! ([`StateStats`]).

use core::fmt;

use smoltcp::wire::IpProtocol;

/// Why [`StateTable::insert`](super::StateTable::insert) did not create a state. The
/// packet that asked for it should be dropped (and counted under this reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refused {
    /// The table is full and every state in it is established (nothing to drop early).
    TableFull,
    /// The rule's `max_states` is reached.
    RuleLimit,
    /// The rule's `max_states_per_source` is reached for this source address.
    SourceLimit,
    /// The client's `max_states` is reached.
    ClientLimit,
    /// A live state already owns the flow's original or reply tuple.
    TupleInUse,
    /// The packet cannot open a state: an ICMP error, a fragment after the first.
    Untrackable,
    /// A TCP segment other than a SYN (without ACK) cannot open a connection.
    TcpWithoutSyn,
}

impl Refused {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::TableFull => "state-table-full",
            Refused::RuleLimit => "rule-state-limit",
            Refused::SourceLimit => "source-state-limit",
            Refused::ClientLimit => "client-state-limit",
            Refused::TupleInUse => "tuple-in-use",
            Refused::Untrackable => "untrackable",
            Refused::TcpWithoutSyn => "tcp-without-syn",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::TableFull => "state table full of established flows",
            Refused::RuleLimit => "rule's max-states reached",
            Refused::SourceLimit => "rule's max-states-per-source reached for this source",
            Refused::ClientLimit => "client's max-states reached",
            Refused::TupleInUse => "flow tuple already owned by another state",
            Refused::Untrackable => "packet cannot open a state (ICMP error or later fragment)",
            Refused::TcpWithoutSyn => "TCP segment without SYN cannot open a connection",
        })
    }
}

/// Refusals, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// [`Refused::TableFull`].
    pub table_full: u64,
    /// [`Refused::RuleLimit`].
    pub rule_limit: u64,
    /// [`Refused::SourceLimit`].
    pub source_limit: u64,
    /// [`Refused::ClientLimit`].
    pub client_limit: u64,
    /// [`Refused::TupleInUse`].
    pub tuple_in_use: u64,
    /// [`Refused::Untrackable`].
    pub untrackable: u64,
    /// [`Refused::TcpWithoutSyn`].
    pub tcp_without_syn: u64,
}

impl Refusals {
    /// Counts one refusal.
    pub(crate) fn count(&mut self, reason: Refused) {
        let counter = match reason {
            Refused::TableFull => &mut self.table_full,
            Refused::RuleLimit => &mut self.rule_limit,
            Refused::SourceLimit => &mut self.source_limit,
            Refused::ClientLimit => &mut self.client_limit,
            Refused::TupleInUse => &mut self.tuple_in_use,
            Refused::Untrackable => &mut self.untrackable,
            Refused::TcpWithoutSyn => &mut self.tcp_without_syn,
        };
        *counter += 1;
    }

    /// All refusals.
    pub fn total(&self) -> u64 {
        self.table_full
            + self.rule_limit
            + self.source_limit
            + self.client_limit
            + self.tuple_in_use
            + self.untrackable
            + self.tcp_without_syn
    }
}

/// Live states per protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByProtocol {
    /// TCP.
    pub tcp: u32,
    /// UDP.
    pub udp: u32,
    /// ICMP and ICMPv6.
    pub icmp: u32,
    /// Everything else.
    pub other: u32,
}

impl ByProtocol {
    pub(crate) fn slot(&mut self, protocol: IpProtocol) -> &mut u32 {
        match protocol {
            IpProtocol::Tcp => &mut self.tcp,
            IpProtocol::Udp => &mut self.udp,
            IpProtocol::Icmp | IpProtocol::Icmpv6 => &mut self.icmp,
            _ => &mut self.other,
        }
    }
}

/// The state table's counters (for the stats line and the shutdown report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    /// The fixed capacity.
    pub capacity: u32,
    /// Live states.
    pub live: u32,
    /// Live states per protocol.
    pub by_protocol: ByProtocol,
    /// Live states whose source is translated (masquerade): the NAT ports in use.
    pub nat_ports_in_use: u32,
    /// States created.
    pub inserts: u64,
    /// Not-yet-established states dropped to make room for a new one (early drop).
    pub early_drops: u64,
    /// States that timed out (found expired on lookup or by a sweep).
    pub expired: u64,
    /// States removed by the caller or replaced by a new TCP connection on the same tuple.
    pub removed: u64,
    /// New states refused, by reason.
    pub refused: Refusals,
    /// Packets of a state dropped because they fell outside the TCP window.
    pub out_of_window: u64,
    /// Packets of a state dropped because they arrived on the wrong NIC.
    pub wrong_interface: u64,
    /// ICMP errors matched to a state through their quoted packet.
    pub related_icmp: u64,
}
