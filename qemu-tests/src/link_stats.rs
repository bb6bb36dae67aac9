//! A test host's link device as its kernel sees it (`ip -json -stats link show`): its MAC and
//! its transmit counters. On a tap, transmitted frames are the ones queued for QEMU, and
//! dropped ones are those that found the queue full because the appliance was not reading
//! fast enough: together they say how much of a flood reached the appliance.

use serde_json::Value;
use smoltcp::wire::EthernetAddress;

use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// A link's transmit counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransmitCounters {
    /// Frames handed on (to QEMU, for a tap).
    pub packets: u64,
    /// Frames dropped on the way (the tap's queue was full).
    pub dropped: u64,
}

impl TransmitCounters {
    /// The counts since `earlier`.
    pub fn since(self, earlier: TransmitCounters) -> TransmitCounters {
        TransmitCounters {
            packets: self.packets.saturating_sub(earlier.packets),
            dropped: self.dropped.saturating_sub(earlier.dropped),
        }
    }
}

/// What `ip` says about a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Its MAC address.
    pub mac: EthernetAddress,
    /// Its transmit counters.
    pub transmit: TransmitCounters,
}

impl LinkState {
    /// Reads `host`'s link device (its tap, inside its namespace).
    pub fn read(host: &TestHost) -> Outcome<LinkState> {
        let output = host.run_checked(
            "ip",
            &["-json", "-stats", "link", "show", "dev", host.tap()],
        )?;
        let text = String::from_utf8_lossy(&output.stdout);
        LinkState::parse(&text).ok_or_else(|| {
            Failure::new(format!(
                "`ip -json -stats link show dev {}` in {}: no address or tx counters in {text:.300}",
                host.tap(),
                host.namespace()
            ))
        })
    }

    /// Reads the first link of `ip -json -stats link show` output.
    pub fn parse(json: &str) -> Option<LinkState> {
        let root: Value = serde_json::from_str(json).ok()?;
        let link = root.get(0)?;
        let mac = link
            .get("address")?
            .as_str()?
            .parse::<EthernetAddress>()
            .ok()?;
        let tx = link.get("stats64")?.get("tx")?;
        Some(LinkState {
            mac,
            transmit: TransmitCounters {
                packets: tx.get("packets")?.as_u64()?,
                dropped: tx.get("dropped")?.as_u64()?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_and_transmit_counters_are_read() {
        let json = r#"[{"ifindex":5,"ifname":"mt1-0","flags":["BROADCAST","UP"],"mtu":1500,
            "link_type":"ether","address":"6e:1b:7a:00:4f:10","broadcast":"ff:ff:ff:ff:ff:ff",
            "stats64":{"rx":{"bytes":1,"packets":2,"errors":0,"dropped":0,"over_errors":0,"multicast":0},
                       "tx":{"bytes":640,"packets":10,"errors":0,"dropped":7,"carrier_errors":0,"collisions":0}}}]"#;
        let link = LinkState::parse(json).unwrap();
        assert_eq!(
            link.mac,
            EthernetAddress([0x6e, 0x1b, 0x7a, 0x00, 0x4f, 0x10])
        );
        assert_eq!(
            link.transmit,
            TransmitCounters {
                packets: 10,
                dropped: 7
            }
        );
        assert_eq!(
            link.transmit.since(TransmitCounters {
                packets: 4,
                dropped: 7
            }),
            TransmitCounters {
                packets: 6,
                dropped: 0
            }
        );
        assert_eq!(LinkState::parse("[]"), None);
        assert_eq!(LinkState::parse("not json"), None);
    }
}
