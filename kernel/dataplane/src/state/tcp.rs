//! TCP tracking with sequence-window checks, after Guido van Rooij's "Real Stateful TCP
//! Packet Filtering in IP Filter" as pf implements it (`pf_tcp_track_full`).
//!
//! Each side (peer) of a connection keeps:
//! - `seqlo`: the sequence number just past the last byte it sent (what the other side
//!   should acknowledge next),
//! - `seqhi`: the highest sequence number the other side's advertised window lets it send,
//! - `max_win`: the largest window it advertised (unscaled), and its window-scale shift.
//!
//! A segment is accepted when its data ends inside the window the receiver offered, it
//! starts no more than one window before what was already sent (retransmissions), and it
//! acknowledges no more than about one window ahead or behind. A RST must carry exactly the
//! expected sequence number (±1). Anything else is reported out of window, and the state is
//! left unchanged. After a peer went quiet or the connection closed, a looser window (one
//! maximum window either way) still lets stragglers through without refreshing the state.
//!
//! What is not done: timestamp (PAWS) checks, sequence-number modulation, SACK-aware
//! checks — pf does them optionally; they are not needed for the window check to hold.

use crate::packet::{tcp_flags, TcpSummary};

/// Largest window a peer may ever have advertised, plus a fudge factor for ACKs of
/// reassembled fragments (pf's `MAXACKWINDOW`).
const MAX_ACK_WINDOW: i64 = 0xffff + 1500;
/// Largest window-scale shift (RFC 7323).
const MAX_WINDOW_SHIFT: u8 = 14;

/// How far one side of a TCP connection has come, as a firewall sees it (pf's subset of
/// the RFC 793 states). The order matters: later stages compare greater.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerState {
    /// Nothing sent yet.
    Closed,
    /// Sent a SYN.
    SynSent,
    /// Its SYN was acknowledged.
    Established,
    /// Sent a FIN.
    Closing,
    /// Its FIN was acknowledged.
    FinWait2,
    /// Connection over (both FINs acknowledged, or reset).
    TimeWait,
}

/// The state of a whole connection, derived from both peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// The initiator's SYN was seen, nothing from the responder yet.
    SynSent,
    /// The responder answered (SYN-ACK); the handshake is not complete on both sides.
    SynReceived,
    /// Both SYNs acknowledged.
    Established,
    /// One side sent a FIN.
    FinWait,
    /// Both sides sent a FIN, not both acknowledged.
    Closing,
    /// Both FINs acknowledged.
    TimeWait,
    /// Reset by an in-window RST.
    Closed,
}

/// Which timeout applies after an accepted segment (see [`Timeouts`](super::Timeouts)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpTimeout {
    /// `tcp_opening`.
    Opening,
    /// `tcp_established`.
    Established,
    /// `tcp_closing`.
    Closing,
    /// `tcp_finwait`.
    FinWait,
    /// `tcp_closed`.
    Closed,
}

/// What tracking made of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracked {
    /// In window: forward it, and refresh the state with this timeout.
    Accepted(TcpTimeout),
    /// In the loose window allowed around a quiet or closed peer: forward it, but do not
    /// refresh the state (a flood must not keep it alive).
    AcceptedLoosely,
    /// Out of window (or a RST with the wrong sequence number): drop it.
    OutOfWindow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Peer {
    seqlo: u32,
    seqhi: u32,
    max_win: u16,
    /// The window-scale shift from this peer's SYN, if it sent the option.
    wscale: Option<u8>,
    state: PeerState,
    /// Whether any segment from this peer was seen.
    seen: bool,
}

impl Peer {
    const SILENT: Peer = Peer {
        seqlo: 0,
        seqhi: 1,
        max_win: 1,
        wscale: None,
        state: PeerState::Closed,
        seen: false,
    };
}

/// The TCP part of a state: both peers, indexed by direction (the initiator sends in the
/// original direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTracker {
    initiator: Peer,
    responder: Peer,
    reset: bool,
}

fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn seq_geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// A SYN's window is never scaled (RFC 7323): express it in the units of `shift`, rounding up.
fn unscale(window: u16, shift: u8) -> u16 {
    ((window as u32 + (1 << shift) - 1) >> shift) as u16
}

impl TcpTracker {
    /// Whether `segment` may open a connection: a SYN without ACK (pf's `flags S/SA`).
    pub fn opens(segment: &TcpSummary) -> bool {
        segment.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
    }

    /// Tracking for a connection opened by `syn` (see [`TcpTracker::opens`]).
    pub fn new(syn: &TcpSummary) -> TcpTracker {
        let wscale = syn.window_scale.map(|s| s.min(MAX_WINDOW_SHIFT));
        let mut end = syn.seq.wrapping_add(syn.payload_len).wrapping_add(1);
        if syn.has(tcp_flags::FIN) {
            end = end.wrapping_add(1);
        }
        let window = syn.window.max(1);
        let initiator = Peer {
            seqlo: end,
            seqhi: end.wrapping_add(1),
            max_win: wscale.map_or(window, |s| unscale(window, s)),
            wscale,
            state: PeerState::SynSent,
            seen: true,
        };
        TcpTracker {
            initiator,
            responder: Peer::SILENT,
            reset: false,
        }
    }

    /// The connection's state.
    pub fn state(&self) -> TcpState {
        let (i, r) = (self.initiator.state, self.responder.state);
        if self.reset {
            TcpState::Closed
        } else if i >= PeerState::FinWait2 && r >= PeerState::FinWait2 {
            TcpState::TimeWait
        } else if i >= PeerState::Closing && r >= PeerState::Closing {
            TcpState::Closing
        } else if i >= PeerState::Closing || r >= PeerState::Closing {
            TcpState::FinWait
        } else if r < PeerState::SynSent {
            TcpState::SynSent
        } else if i < PeerState::Established || r < PeerState::Established {
            TcpState::SynReceived
        } else {
            TcpState::Established
        }
    }

    /// Whether the three-way handshake completed (both peers reached ESTABLISHED without a
    /// reset): the connection is no longer a candidate for early drop.
    pub fn handshake_completed(&self) -> bool {
        !self.reset
            && self.initiator.state >= PeerState::Established
            && self.responder.state >= PeerState::Established
    }

    /// Whether both sides are done (both FINs acknowledged, or reset): a new SYN on the same
    /// tuple starts a new connection rather than belonging to this one.
    pub fn is_over(&self) -> bool {
        self.initiator.state >= PeerState::FinWait2 && self.responder.state >= PeerState::FinWait2
    }

    /// Whether the peer (the initiator if `from_initiator`) has sent any segment.
    pub fn has_sent(&self, from_initiator: bool) -> bool {
        self.peer(from_initiator).seen
    }

    /// Whether `seq`, the sequence number of a segment of the peer (the initiator if
    /// `from_initiator`) quoted in an ICMP error, lies in that peer's window: no further
    /// than the other side's window lets it send, no more than one window behind what it
    /// sent (pf's check in `pf_test_state_icmp`). An error quoting anything else is about
    /// a segment this connection never carried.
    pub fn quote_in_window(&self, seq: u32, from_initiator: bool) -> bool {
        let (src, dst) = (self.peer(from_initiator), self.peer(!from_initiator));
        let dws = match (src.wscale, dst.wscale) {
            (Some(_), Some(shift)) => shift,
            _ => 0,
        };
        let window = (dst.max_win as u32) << dws;
        seq_geq(src.seqhi, seq) && seq_geq(seq, src.seqlo.wrapping_sub(window))
    }

    fn peer(&self, initiator: bool) -> &Peer {
        if initiator {
            &self.initiator
        } else {
            &self.responder
        }
    }

    /// Tracks a segment travelling from the initiator (`from_initiator`) or the responder.
    pub fn track(&mut self, segment: &TcpSummary, from_initiator: bool) -> Tracked {
        let (src, dst) = if from_initiator {
            (&mut self.initiator, &mut self.responder)
        } else {
            (&mut self.responder, &mut self.initiator)
        };
        let syn = segment.has(tcp_flags::SYN);
        let fin = segment.has(tcp_flags::FIN);
        let rst = segment.has(tcp_flags::RST);
        let has_ack = segment.has(tcp_flags::ACK);
        let (mut sws, mut dws) = match (src.wscale, dst.wscale) {
            (Some(s), Some(d)) if !syn => (s, d),
            _ => (0, 0),
        };
        let mut window = segment.window;
        let orig_seq = segment.seq;
        let mut seq = segment.seq;
        let mut end = seq
            .wrapping_add(segment.payload_len)
            .wrapping_add(syn as u32);
        let mut data_end = end;
        if fin {
            end = end.wrapping_add(1);
        }

        if !src.seen {
            // The first segment from this side (the responder's SYN-ACK, normally).
            if syn && dst.wscale.is_some() {
                src.wscale = segment.window_scale.map(|s| s.min(MAX_WINDOW_SHIFT));
                match src.wscale {
                    Some(shift) => {
                        window = unscale(window, shift);
                        sws = shift;
                        dws = dst.wscale.unwrap_or(0);
                    }
                    None => {
                        // No scaling after all: undo the scaling of the other side's window.
                        let shift = dst.wscale.unwrap_or(0);
                        dst.max_win = ((dst.max_win as u32) << shift).min(0xffff) as u16;
                        dst.wscale = None;
                    }
                }
            }
            src.seqlo = seq;
            src.seen = true;
            if src.state < PeerState::SynSent {
                src.state = PeerState::SynSent;
            }
            let allowed = ((dst.max_win as u32) << dws).max(1);
            if seq_geq(end.wrapping_add(allowed), src.seqhi) || src.seqhi == 1 {
                src.seqhi = end.wrapping_add(allowed);
            }
            src.max_win = src.max_win.max(window);
        }

        let ack = if !has_ack || (segment.ack == 0 && rst) || dst.state < PeerState::SynSent {
            // No acknowledgement to check (or a stack that sends none on RST).
            dst.seqlo
        } else {
            segment.ack
        };
        if seq == end {
            // A segment without data: ease the sequence checks.
            seq = src.seqlo;
            end = seq;
            data_end = seq;
        }
        let ackskew = dst.seqlo.wrapping_sub(ack) as i32 as i64;
        let dst_window = (dst.max_win as u32) << dws;
        let scaled_window = (window as u32) << sws;

        let rst_exact = !rst
            || orig_seq == src.seqlo
            || orig_seq == src.seqlo.wrapping_add(1)
            || orig_seq.wrapping_add(1) == src.seqlo;
        let in_window = seq_geq(src.seqhi, data_end)
            && seq_geq(seq, src.seqlo.wrapping_sub(dst_window))
            && ackskew >= -MAX_ACK_WINDOW
            && ackskew <= MAX_ACK_WINDOW << sws
            && rst_exact;
        let loose = (dst.state < PeerState::SynSent
            || dst.state >= PeerState::FinWait2
            || src.state >= PeerState::FinWait2)
            && seq_geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW as u32), data_end)
            && seq_geq(seq, src.seqlo.wrapping_sub(MAX_ACK_WINDOW as u32));
        if !in_window && !loose {
            return Tracked::OutOfWindow;
        }

        src.max_win = src.max_win.max(window);
        if seq_gt(end, src.seqlo) {
            src.seqlo = end;
        }
        if seq_geq(ack.wrapping_add(scaled_window), dst.seqhi) {
            dst.seqhi = ack.wrapping_add(scaled_window.max(1));
        }
        if fin && src.state < PeerState::Closing {
            src.state = PeerState::Closing;
        }
        if !in_window {
            if rst && rst_exact {
                src.state = PeerState::TimeWait;
                dst.state = PeerState::TimeWait;
                self.reset = true;
            }
            return Tracked::AcceptedLoosely;
        }
        if syn && src.state < PeerState::SynSent {
            src.state = PeerState::SynSent;
        }
        if has_ack {
            if dst.state == PeerState::SynSent {
                dst.state = PeerState::Established;
            } else if dst.state == PeerState::Closing {
                dst.state = PeerState::FinWait2;
            }
        }
        if rst {
            src.state = PeerState::TimeWait;
            dst.state = PeerState::TimeWait;
            self.reset = true;
        }
        Tracked::Accepted(timeout_for(src.state, dst.state))
    }
}

/// Which timeout the peers' states call for (pf's order of tests).
fn timeout_for(src: PeerState, dst: PeerState) -> TcpTimeout {
    if src >= PeerState::FinWait2 && dst >= PeerState::FinWait2 {
        TcpTimeout::Closed
    } else if src >= PeerState::Closing && dst >= PeerState::Closing {
        TcpTimeout::FinWait
    } else if src < PeerState::Established || dst < PeerState::Established {
        TcpTimeout::Opening
    } else if src >= PeerState::Closing || dst >= PeerState::Closing {
        TcpTimeout::Closing
    } else {
        TcpTimeout::Established
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcp_flags::{ACK, FIN, RST, SYN};

    fn segment(seq: u32, ack: u32, flags: u8, window: u16, payload_len: u32) -> TcpSummary {
        TcpSummary {
            src_port: 1,
            dst_port: 2,
            seq,
            ack,
            flags,
            window,
            window_scale: (flags & SYN != 0).then_some(7),
            payload_len,
        }
    }

    /// A connection through the handshake: initiator ISN 1000, responder ISN 5000.
    fn established() -> TcpTracker {
        let mut t = TcpTracker::new(&segment(1000, 0, SYN, 64240, 0));
        assert_eq!(
            t.track(&segment(5000, 1001, SYN | ACK, 65160, 0), false),
            Tracked::Accepted(TcpTimeout::Opening)
        );
        assert_eq!(
            t.track(&segment(1001, 5001, ACK, 502, 0), true),
            Tracked::Accepted(TcpTimeout::Established)
        );
        t
    }

    #[test]
    fn handshake_walks_syn_sent_syn_received_established() {
        let mut t = TcpTracker::new(&segment(1000, 0, SYN, 64240, 0));
        assert_eq!(t.state(), TcpState::SynSent);
        t.track(&segment(5000, 1001, SYN | ACK, 65160, 0), false);
        assert_eq!(t.state(), TcpState::SynReceived);
        assert!(!t.handshake_completed());
        t.track(&segment(1001, 5001, ACK, 502, 0), true);
        assert_eq!(t.state(), TcpState::Established);
        assert!(t.handshake_completed());
    }

    #[test]
    fn data_inside_the_scaled_window_is_accepted_and_beyond_it_is_not() {
        let mut t = established();
        // The responder offered 65160 bytes in its SYN (scale 7): the initiator may send
        // that much past the acknowledged point.
        assert_eq!(
            t.track(&segment(1001, 5001, ACK, 502, 60_000), true),
            Tracked::Accepted(TcpTimeout::Established)
        );
        assert_eq!(
            t.track(&segment(1001 + 60_000 + 200_000, 5001, ACK, 502, 100), true),
            Tracked::OutOfWindow
        );
    }

    #[test]
    fn ack_far_beyond_what_was_sent_is_out_of_window() {
        let mut t = established();
        assert_eq!(
            t.track(&segment(5001, 1001 + 10_000_000, ACK, 509, 0), false),
            Tracked::OutOfWindow
        );
    }

    #[test]
    fn a_quoted_segment_must_lie_in_its_senders_window() {
        let mut t = TcpTracker::new(&segment(1000, 0, SYN, 64240, 0));
        // Before any answer: the SYN itself may be quoted (a host unreachable about it),
        // and the responder has sent nothing anyone could quote.
        assert!(t.quote_in_window(1000, true));
        assert!(!t.quote_in_window(1000 + (1 << 30), true));
        assert!(!t.has_sent(false));
        t.track(&segment(5000, 1001, SYN | ACK, 65160, 0), false);
        t.track(&segment(1001, 5001, ACK, 502, 0), true);
        assert!(t.has_sent(false));
        // Data the initiator may send, or sent up to one window back: plausible.
        assert!(t.quote_in_window(1001, true));
        assert!(t.quote_in_window(1001 + 60_000, true));
        assert!(t.quote_in_window(1001u32.wrapping_sub(60_000), true));
        // A gigabyte either way: no segment of this connection.
        assert!(!t.quote_in_window(1001 + (1 << 30), true));
        assert!(!t.quote_in_window(1001u32.wrapping_sub(1 << 30), true));
        assert!(t.quote_in_window(5001, false));
        assert!(!t.quote_in_window(5001 + (1 << 30), false));
    }

    #[test]
    fn rst_must_carry_the_expected_sequence_number() {
        let mut t = established();
        assert_eq!(
            t.track(&segment(5001 + 30_000, 1001, RST | ACK, 0, 0), false),
            Tracked::OutOfWindow
        );
        assert_eq!(t.state(), TcpState::Established);
        assert_eq!(
            t.track(&segment(5001, 1001, RST | ACK, 0, 0), false),
            Tracked::Accepted(TcpTimeout::Closed)
        );
        assert_eq!(t.state(), TcpState::Closed);
    }

    #[test]
    fn fin_exchange_walks_fin_wait_closing_time_wait() {
        let mut t = established();
        assert_eq!(
            t.track(&segment(1001, 5001, FIN | ACK, 502, 0), true),
            Tracked::Accepted(TcpTimeout::Closing)
        );
        assert_eq!(t.state(), TcpState::FinWait);
        assert_eq!(
            t.track(&segment(5001, 1002, FIN | ACK, 509, 0), false),
            Tracked::Accepted(TcpTimeout::FinWait)
        );
        assert_eq!(t.state(), TcpState::Closing);
        assert_eq!(
            t.track(&segment(1002, 5002, ACK, 502, 0), true),
            Tracked::Accepted(TcpTimeout::Closed)
        );
        assert_eq!(t.state(), TcpState::TimeWait);
        assert!(t.is_over());
    }

    #[test]
    fn responder_without_window_scaling_turns_scaling_off_for_both() {
        let mut t = TcpTracker::new(&segment(1000, 0, SYN, 64240, 0));
        let mut synack = segment(5000, 1001, SYN | ACK, 65160, 0);
        synack.window_scale = None;
        t.track(&synack, false);
        t.track(&segment(1001, 5001, ACK, 64240, 0), true);
        // Windows are now plain bytes: 200 kB ahead of a 65 kB window is out.
        assert_eq!(
            t.track(&segment(1001 + 200_000, 5001, ACK, 64240, 10), true),
            Tracked::OutOfWindow
        );
        assert_eq!(
            t.track(&segment(1001, 5001, ACK, 64240, 1400), true),
            Tracked::Accepted(TcpTimeout::Established)
        );
    }

    #[test]
    fn refused_connection_rst_from_the_responder_is_accepted() {
        let mut t = TcpTracker::new(&segment(1000, 0, SYN, 64240, 0));
        assert_eq!(
            t.track(&segment(0, 1001, RST | ACK, 0, 0), false),
            Tracked::Accepted(TcpTimeout::Closed)
        );
        assert_eq!(t.state(), TcpState::Closed);
        assert!(!t.handshake_completed());
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut t = TcpTracker::new(&segment(u32::MAX - 10, 0, SYN, 64240, 0));
        t.track(&segment(5000, u32::MAX - 9, SYN | ACK, 65160, 0), false);
        t.track(&segment(u32::MAX - 9, 5001, ACK, 502, 0), true);
        assert_eq!(
            t.track(&segment(u32::MAX - 9, 5001, ACK, 502, 1000), true),
            Tracked::Accepted(TcpTimeout::Established)
        );
        assert_eq!(
            t.track(&segment(5001, 990, ACK, 509, 0), false),
            Tracked::Accepted(TcpTimeout::Established)
        );
    }
}
