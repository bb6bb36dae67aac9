//! What a state knows about its protocol: TCP tracking, or the pseudo-states pf keeps for
//! connectionless protocols, and the timeout each stage calls for.

use smoltcp::time::Duration;

use super::tcp::{TcpState, TcpTimeout, TcpTracker, Tracked};
use super::timeouts::Timeouts;
use smoltcp::wire::IpProtocol;

use crate::packet::{IpSummary, QuotedPacket, Transport};

/// How far a state has come, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolState {
    /// A TCP connection.
    Tcp(TcpState),
    /// UDP, ICMP or another protocol, only the initiator has sent (pf's SINGLE).
    Single,
    /// UDP, ICMP or another protocol, both sides have sent (pf's MULTIPLE).
    Multiple,
}

/// Which family of timeouts a connectionless state uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Connectionless {
    Udp,
    Icmp,
    Other,
}

/// Pseudo-state of one side of a connectionless flow (pf's `PFUDPS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seen {
    Nothing,
    Single,
    Multiple,
}

/// A state's protocol tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tracking {
    Tcp(TcpTracker),
    Pseudo {
        kind: Connectionless,
        initiator: Seen,
        responder: Seen,
    },
}

/// What tracking makes of a packet quoted in an ICMP error about the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quote {
    /// The state's flow can have carried it.
    Plausible,
    /// Its sender has sent nothing in this flow.
    NeverSent,
    /// A TCP segment outside its sender's window (or without its sequence number).
    OutOfWindow,
}

/// What tracking made of a packet of an existing state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Forward it; the state now lives `Some(timeout)` longer, or is not refreshed (`None`).
    Forward(Option<Duration>),
    /// TCP segment outside the window.
    OutOfWindow,
}

impl Tracking {
    /// Tracking for a flow opened by `summary`, and its first timeout. `None` if the packet
    /// cannot open a state: a TCP segment other than a SYN.
    pub fn open(summary: &IpSummary, timeouts: &Timeouts) -> Option<(Tracking, Duration)> {
        let kind = match summary.transport {
            Transport::Tcp(syn) => {
                return TcpTracker::opens(&syn)
                    .then(|| (Tracking::Tcp(TcpTracker::new(&syn)), timeouts.tcp_first));
            }
            _ if summary.protocol == IpProtocol::Udp => Connectionless::Udp,
            _ if summary.protocol == IpProtocol::Icmp => Connectionless::Icmp,
            _ => Connectionless::Other,
        };
        let first = match kind {
            Connectionless::Udp => timeouts.udp_first,
            Connectionless::Icmp => timeouts.icmp_first,
            Connectionless::Other => timeouts.other_first,
        };
        Some((
            Tracking::Pseudo {
                kind,
                initiator: Seen::Single,
                responder: Seen::Nothing,
            },
            first,
        ))
    }

    /// Tracks a packet of this state travelling from the initiator (`from_initiator`) or the
    /// responder.
    pub fn advance(
        &mut self,
        summary: &IpSummary,
        from_initiator: bool,
        timeouts: &Timeouts,
    ) -> Progress {
        match self {
            Tracking::Tcp(tracker) => {
                let Transport::Tcp(segment) = summary.transport else {
                    return Progress::Forward(None);
                };
                match tracker.track(&segment, from_initiator) {
                    Tracked::Accepted(timeout) => {
                        Progress::Forward(Some(tcp_timeout(timeout, timeouts)))
                    }
                    Tracked::AcceptedLoosely => Progress::Forward(None),
                    Tracked::OutOfWindow => Progress::OutOfWindow,
                }
            }
            Tracking::Pseudo {
                kind,
                initiator,
                responder,
            } => {
                let (src, dst) = if from_initiator {
                    (initiator, responder)
                } else {
                    (responder, initiator)
                };
                if *src < Seen::Single {
                    *src = Seen::Single;
                }
                if *dst == Seen::Single {
                    *dst = Seen::Multiple;
                }
                let both = *src == Seen::Multiple && *dst == Seen::Multiple;
                let timeout = match (kind, both) {
                    (Connectionless::Icmp, _) => timeouts.icmp_error,
                    (Connectionless::Udp, true) => timeouts.udp_multiple,
                    (Connectionless::Udp, false) => timeouts.udp_single,
                    (Connectionless::Other, true) => timeouts.other_multiple,
                    (Connectionless::Other, false) => timeouts.other_single,
                };
                Progress::Forward(Some(timeout))
            }
        }
    }

    /// Whether the packet `quoted` in an ICMP error, sent by the initiator
    /// (`from_initiator`) or the responder, can be one of this flow's: its sender has sent
    /// something, and a TCP segment lies in its sender's window.
    pub fn judge_quote(&self, quoted: &QuotedPacket, from_initiator: bool) -> Quote {
        match self {
            Tracking::Tcp(tracker) if !tracker.has_sent(from_initiator) => Quote::NeverSent,
            Tracking::Tcp(tracker) => match quoted.tcp_seq {
                Some(seq) if tracker.quote_in_window(seq, from_initiator) => Quote::Plausible,
                _ => Quote::OutOfWindow,
            },
            Tracking::Pseudo {
                initiator,
                responder,
                ..
            } => {
                let sender = if from_initiator { initiator } else { responder };
                if *sender > Seen::Nothing {
                    Quote::Plausible
                } else {
                    Quote::NeverSent
                }
            }
        }
    }

    /// Whether the flow is past its opening: a completed TCP handshake, or any packet back
    /// from the responder. Such a state is never dropped early to make room.
    pub fn established(&self) -> bool {
        match self {
            Tracking::Tcp(tracker) => tracker.handshake_completed(),
            Tracking::Pseudo { responder, .. } => *responder > Seen::Nothing,
        }
    }

    /// Whether the segment is a SYN (without ACK) that starts a new connection on this
    /// state's tuple: the connection is over (both FINs acknowledged, or reset). Which end
    /// sends it does not matter.
    pub fn tcp_reusable_by(&self, summary: &IpSummary) -> bool {
        match (self, summary.transport) {
            (Tracking::Tcp(tracker), Transport::Tcp(segment)) => {
                tracker.is_over() && TcpTracker::opens(&segment)
            }
            _ => false,
        }
    }

    /// The public view of the stage reached.
    pub fn protocol_state(&self) -> ProtocolState {
        match self {
            Tracking::Tcp(tracker) => ProtocolState::Tcp(tracker.state()),
            Tracking::Pseudo {
                responder: Seen::Nothing,
                ..
            } => ProtocolState::Single,
            Tracking::Pseudo { .. } => ProtocolState::Multiple,
        }
    }
}

fn tcp_timeout(timeout: TcpTimeout, timeouts: &Timeouts) -> Duration {
    match timeout {
        TcpTimeout::Opening => timeouts.tcp_opening,
        TcpTimeout::Established => timeouts.tcp_established,
        TcpTimeout::Closing => timeouts.tcp_closing,
        TcpTimeout::FinWait => timeouts.tcp_finwait,
        TcpTimeout::Closed => timeouts.tcp_closed,
    }
}
