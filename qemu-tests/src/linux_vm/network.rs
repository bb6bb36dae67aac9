//! The Linux VM's network setup, from the same checked ruleset as its nftables ruleset: each
//! NIC renamed `nic<i>` by its MAC (the MAC QEMU gives `nic<i>`), its MTU, address and link,
//! the uplink's default route, proxy ARP where clients are declared (Moat answers their ARP
//! for any address), no ICMP redirects (Moat sends none), strict TCP tracking (no
//! connection picked up mid-stream), and a connection table sized for a firewall: 65,536
//! connections in 16,384 buckets (Linux's default at 128 MiB is 1,024, which would cap new
//! connections at about 100 a second while closed ones linger for their 10 s; Moat's state
//! table holds a quarter of its free heap). `/init` sources it after loading the nftables
//! ruleset and turning forwarding on.

use std::fmt::Write as _;

use image::qemu::MacAddress;
use rules::checked::{Addressing, Checked};

/// Offloads `ethtool -K` switches off in the "offloads off" variant: checksums, scatter-
/// gather, segmentation and receive coalescing (in software and by the device).
pub const OFFLOADS: [&str; 7] = ["rx", "tx", "sg", "tso", "gso", "gro", "rx-gro-hw"];

/// The setup script for a VM with `nics` NICs; with `offloads_off`, every NIC's offloads
/// are switched off with `ethtool`.
pub fn setup_script(checked: &Checked, nics: u8, offloads_off: bool) -> String {
    let mut out = String::from(
        "# Generated from a Moat ruleset by qemu-tests. Sourced by /init.\n\
         rename_by_mac() {\n\
         \tfor tries in $(seq 200); do\n\
         \t\tfor dev in /sys/class/net/*; do\n\
         \t\t\tif [ \"$(cat \"$dev/address\")\" = \"$1\" ]; then ip link set dev \"${dev##*/}\" name \"$2\"; return; fi\n\
         \t\tdone\n\
         \t\tsleep 0.05\n\
         \tdone\n\
         \tfail \"no NIC with MAC $1\"\n\
         }\n\
         sysctl -q -w net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0\n\
         sysctl -q -w net.netfilter.nf_conntrack_tcp_loose=0\n\
         sysctl -q -w net.netfilter.nf_conntrack_buckets=16384 net.netfilter.nf_conntrack_max=65536\n",
    );
    for nic in 0..nics {
        let name = format!("nic{nic}");
        let _ = writeln!(
            out,
            "rename_by_mac {} {name}",
            MacAddress::for_nic(nic.into())
        );
        let Some(interface) = checked.interface_on(nic) else {
            continue; // not declared: stays down, like Moat's undeclared NICs
        };
        let _ = writeln!(out, "ip link set dev {name} mtu {}", interface.mtu);
        if let Addressing::Static {
            address,
            prefix_len,
            ..
        } = interface.addressing
        {
            let _ = writeln!(out, "ip addr add {address}/{prefix_len} dev {name}");
        }
        if checked.clients.iter().any(|c| c.nic == nic) {
            let _ = writeln!(
                out,
                "sysctl -q -w net.ipv4.conf.{name}.proxy_arp=1 net.ipv4.conf.{name}.proxy_arp_pvlan=1"
            );
        }
        if offloads_off {
            for feature in OFFLOADS {
                // A feature the device cannot change (fixed) is reported, not fatal.
                let _ = writeln!(
                    out,
                    "ethtool -K {name} {feature} off 2>/dev/null || echo \"moat-linux: {name}: {feature} cannot be switched off\""
                );
            }
        }
        let _ = writeln!(out, "ip link set dev {name} up");
    }
    if let Some(uplink) = checked.uplink() {
        if let Addressing::Static {
            gateway: Some(gateway),
            ..
        } = uplink.addressing
        {
            let _ = writeln!(
                out,
                "ip route add default via {gateway} dev nic{}",
                uplink.nic
            );
        }
    }
    if offloads_off {
        let _ = writeln!(
            out,
            "on=$(ethtool -k nic0 | grep -E ': on( |$)' | grep -v fixed | cut -d: -f1 | tr -d '\\t' | tr '\\n' ' '); echo \"moat-linux: offloads still on: ${{on:-none}}\""
        );
    }
    out
}
