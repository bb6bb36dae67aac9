//! Network address translation, expressed as translations stored in the state table.
//!
//! A flow is translated when its state is created and never re-decided: the state's two
//! tuples imply the [`Translation`] of each direction, and every later packet (and every
//! ICMP error about one) gets it from [`StateTable::lookup`](crate::state::StateTable::lookup).
//!
//! - Destination NAT, for a new flow addressed to the appliance, before routing and policy:
//!   [`port_forward`] (a `forward` rule redirects to a client) and [`dns_redirect`] (clients'
//!   DNS goes to the upstream resolvers; replies come back from the appliance's address).
//! - Source NAT, after the policy passed the flow: [`masquerade_rule`] says whether a `nat`
//!   rule applies and [`Masquerader::masquerade`] picks the source port — the client's own
//!   when its reply tuple is free, else a random free one, refusing after bounded attempts.
//! - A DNS query to the appliance's IPv6 address whose resolver is IPv4 (or the reverse)
//!   crosses families: [`across_families`] rebuilds each of its packets (RFC 7915).
//! - [`apply`] rewrites a packet (or an ICMP error's quoted packet) to match a translation,
//!   with incremental checksum updates (RFC 1624).

mod apply;
mod family;
mod masquerade;
pub(crate) mod policy_match;
mod redirect;
mod translation;

pub use apply::{apply, apply_offloaded, set_addresses};
pub use family::{
    across_families, changes_family, crossable, error_across_families, mss_ceiling, Untranslatable,
};
pub use masquerade::{masquerade_rule, MasqueradeConfig, Masquerader, NatRefused, NatStats};
pub use redirect::{dns_redirect, port_forward, Redirected, DNS_PORT};
pub use translation::Translation;
