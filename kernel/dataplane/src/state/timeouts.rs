//! [`Timeouts`]: how long a state lives after its last packet, per protocol and stage.

use smoltcp::time::Duration;

/// How long a state lives after its last accepted packet, by protocol and stage. The
/// defaults are pf's (`pf.conf(5)`, "set timeout"); the caller may override any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP, after the first packet (a SYN).
    pub tcp_first: Duration,
    /// TCP, while the handshake is not complete on both sides.
    pub tcp_opening: Duration,
    /// TCP, both sides established.
    pub tcp_established: Duration,
    /// TCP, one side has sent a FIN.
    pub tcp_closing: Duration,
    /// TCP, both sides have sent a FIN.
    pub tcp_finwait: Duration,
    /// TCP, both FINs acknowledged, or reset.
    pub tcp_closed: Duration,
    /// UDP, after the first packet.
    pub udp_first: Duration,
    /// UDP, more packets from the initiator but none back.
    pub udp_single: Duration,
    /// UDP, packets seen both ways.
    pub udp_multiple: Duration,
    /// ICMP echo (and other ICMP queries), after the first packet.
    pub icmp_first: Duration,
    /// ICMP, after a reply (pf's `icmp.error`, used for query replies too).
    pub icmp_error: Duration,
    /// Other protocols, after the first packet.
    pub other_first: Duration,
    /// Other protocols, more packets from the initiator but none back.
    pub other_single: Duration,
    /// Other protocols, packets seen both ways.
    pub other_multiple: Duration,
}

impl Timeouts {
    /// pf's defaults.
    pub const PF: Timeouts = Timeouts {
        tcp_first: Duration::from_secs(120),
        tcp_opening: Duration::from_secs(30),
        tcp_established: Duration::from_secs(24 * 60 * 60),
        tcp_closing: Duration::from_secs(900),
        tcp_finwait: Duration::from_secs(45),
        tcp_closed: Duration::from_secs(90),
        udp_first: Duration::from_secs(60),
        udp_single: Duration::from_secs(30),
        udp_multiple: Duration::from_secs(60),
        icmp_first: Duration::from_secs(20),
        icmp_error: Duration::from_secs(10),
        other_first: Duration::from_secs(60),
        other_single: Duration::from_secs(30),
        other_multiple: Duration::from_secs(60),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::PF
    }
}
