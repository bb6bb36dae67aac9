//! DHCP (RFC 2131) on `smoltcp::wire`'s DHCP codec: the uplink's client, and the server
//! for client interfaces ([`server`], [`leases`], `request.rs`: see [`server`] for who
//! gets which address and how the lease table stays bounded). The rest of this page is
//! about the client.
//!
//! # Behaviour
//! - **Finding a server**: a DISCOVER at once, then retransmissions 1 s, 2 s, 2 s, … apart
//!   ([`SEARCH_CAP`]), each randomized by ±25 % ([`backoff`]). A server that becomes
//!   reachable — the net VM starts after the appliance, its tap is attached late — is found
//!   within 2.5 s plus one round trip. An offer is taken at once (REQUEST, retransmitted
//!   1, 2, 4, 8 s apart, then back to DISCOVER; a NAK sends it back to DISCOVER too).
//! - **Refusing a lease**: the appliance says which leases it cannot use (one whose network
//!   overlaps a client network would route clients' traffic out of the uplink). Such an
//!   offer is ignored and such an acknowledgement declined (DHCPDECLINE); the client goes on
//!   discovering, patiently (up to [`PATIENT_CAP`] between DISCOVERs), since the server is
//!   there and will likely offer the same again.
//! - **Keeping the lease**: renewal with the granting server from T1 (unicast), rebinding
//!   with any server from T2 (broadcast), retransmitted after half the time left, at least
//!   [`MIN_RENEW_RETRANSMIT`]; on expiry the lease is lost and discovery starts at once. A
//!   NAK loses it at once.
//! - **Verifying on demand** ([`DhcpClient::verify`]): when the uplink may have changed under
//!   it (the appliance saw its gateway move to another MAC, or stop answering), a REQUEST as
//!   in INIT-REBOOT asks whichever server answers whether the address is still right; a
//!   server on a changed network NAKs it (RFC 2131 4.3.2), and the client starts over. An
//!   unchanged network ACKs it and nothing changes.
//!
//! # Why not smoltcp's `dhcpv4::Socket`
//! smoltcp 0.14's socket (what Moat used before) retransmits DISCOVER at a fixed interval
//! (`RetryConfig::discover_timeout`, 10 s by default, no backoff or jitter), so a first
//! DISCOVER lost before the server is up cost 10 s. It also cannot refuse an offer before
//! requesting it, cannot send DHCPDECLINE, cannot verify a lease early without dropping it
//! (`reset()` deconfigures at once), waits at least 60 s between renewals
//! (`min_renew_timeout`), and sends its unicast renewals through the local stack's own ARP
//! cache, which the data plane's neighbour handling does not reach. This client keeps
//! smoltcp's wire format and does the rest in the data plane.
//!
//! Not implemented: ARP-probing an acknowledged address before using it (RFC 5227), the
//! random 1–10 s wait before the first DISCOVER RFC 2131 4.4.1 suggests (an appliance wants
//! its uplink as soon as possible), DHCPRELEASE (the appliance never gives its lease back:
//! it has no shutdown path that would wait for the network).

mod backoff;
mod client;
mod lease;
pub mod leases;
pub(crate) mod message;
mod request;
pub mod server;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tests;

pub use backoff::{Backoff, FIRST_DELAY, JITTER_PERCENT};
pub use client::{
    Destination, DhcpClient, Event, LossReason, Transmit, AFTER_DECLINE, MIN_RENEW_RETRANSMIT,
    PATIENT_CAP, REQUEST_ATTEMPTS, SEARCH_CAP, VERIFY_ATTEMPTS,
};
pub use lease::{Lease, DEFAULT_LEASE, MIN_LEASE};
pub use message::{ClientMessage, ServerMessage};
pub use request::{Answer, ClientRequest, ServerParams, Unusable};
pub use server::{Reservation, Server, ServerConfig};
