//! DHCP on an interface the ruleset configures with `dhcp`: a lease (or its loss) that the
//! NIC's local stack reports changes the NIC's address and gateway, the resolvers the DNS
//! redirect uses, the routes and the anti-spoofing filter.

use smoltcp::wire::EthernetAddress;

use super::Appliance;
use crate::antispoof::SourceFilter;
use crate::arp as arp_wire;
use crate::local::DhcpChange;
use crate::route::Topology;
use crate::sink::FrameSink;

impl Appliance<'_> {
    /// Applies a DHCP change on NIC `nic`.
    pub(super) fn apply_dhcp(&mut self, nic: u8, change: DhcpChange, sink: &mut dyn FrameSink) {
        let config = &mut self.configs[nic as usize];
        match change {
            DhcpChange::Configured {
                address,
                router,
                dns_servers,
            } => {
                config.ipv4 = Some(address);
                config.gateway = router;
                log::info!(
                    "nic{nic} dhcp: address {address} gateway {} dns {:?}",
                    router
                        .map(|r| alloc::format!("{r}"))
                        .unwrap_or_else(|| alloc::string::String::from("none")),
                    dns_servers
                );
                if !dns_servers.is_empty() {
                    self.upstream_dns = dns_servers;
                }
                let message = arp_wire::gratuitous(config.mac, address.address());
                self.send_arp(nic, EthernetAddress::BROADCAST, &message, sink);
            }
            DhcpChange::Deconfigured => {
                if let Some(old) = config.ipv4.take() {
                    log::warn!("nic{nic} dhcp: lease on {old} lost, address removed");
                }
                config.gateway = None;
            }
        }
        let config = self.configs[nic as usize];
        self.routes.set_nic(nic, config);
        self.sources = SourceFilter::new(&Topology::from_policy(&self.configs, &self.policy));
    }
}
