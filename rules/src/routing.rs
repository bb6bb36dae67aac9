//! Where a packet leaves: the appliance's routing over the declared interfaces, as the
//! self-tests and `explain` need it.
//!
//! In order: one of the appliance's own addresses → the appliance itself ([`OUT_SELF`]);
//! a client's address → the client's NIC; an address on a connected network → that NIC
//! (longest prefix first); anything else → the uplink (the default route).

use std::net::IpAddr;

use dataplane::policy::OUT_SELF;

use crate::checked::Checked;

/// The egress of a packet to `dst`: a NIC number or [`OUT_SELF`].
pub fn route(checked: &Checked, dst: IpAddr) -> Result<u8, String> {
    if let IpAddr::V4(v4) = dst {
        if checked.interfaces.iter().any(|i| i.address() == Some(v4)) {
            return Ok(OUT_SELF);
        }
    }
    let client = checked.clients.iter().find(|c| match dst {
        IpAddr::V4(v4) => c.ipv4 == Some(v4),
        IpAddr::V6(v6) => c.ipv6 == Some(v6),
    });
    if let Some(client) = client {
        return Ok(client.nic);
    }
    if let IpAddr::V4(v4) = dst {
        let connected = checked
            .interfaces
            .iter()
            .filter(|i| i.contains(v4))
            .max_by_key(|i| i.network().map_or(0, |(_, len)| len));
        if let Some(iface) = connected {
            return Ok(iface.nic);
        }
    }
    match checked.uplink() {
        Some(uplink) => Ok(uplink.nic),
        None => Err(format!(
            "no route to {dst}: it is on no connected network and no interface is the uplink"
        )),
    }
}

/// How an egress reads in messages: the interface's name, or `self`.
pub fn egress_name(checked: &Checked, out: u8) -> String {
    if out == OUT_SELF {
        return "self".to_string();
    }
    checked
        .interface_on(out)
        .map_or_else(|| format!("nic{out}"), |i| i.name.clone())
}
