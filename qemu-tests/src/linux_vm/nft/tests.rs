//! The translation held against Moat itself: for the project's rulesets and one that uses
//! every corner of the language, the translated filter decides tens of thousands of flow
//! keys exactly as the data plane's `Policy::decide` does, the translated anti-spoofing
//! refuses exactly the sources the data plane's `SourceFilter` refuses, and `nft -c` (in a
//! network namespace of its own) accepts the rendered ruleset.

use std::net::Ipv4Addr;
use std::process::Command;

use dataplane::antispoof::SourceFilter;
use dataplane::config::ApplianceConfig;
use dataplane::policy::{
    flow_addr_to_ipv4, ipv4_to_flow_addr, FlowKey, OUT_SELF, REDIRECT_DNS, REDIRECT_FORWARD,
    REDIRECT_NONE,
};
use dataplane::rng::SplitMix64;
use dataplane::route::Topology;
use rules::space::Field;
use rules::Compiled;
use smoltcp::wire::{EthernetAddress, Ipv4Address};

use super::{own_destinations, translate, NftPolicy};
use crate::kernels::workspace;
use crate::notice::{is_root, notice};

/// Uses every part of the language the translation must get right: tables and negations,
/// ports on TCP, UDP and SCTP, ICMP types with codes and ICMPv6 names, protocol numbers,
/// `to self`, reject, logging, state limits, a port-range forward passed by a `forwarded`
/// rule and a DNS redirect to listed resolvers.
const CORNERS: &str = "\
interface wan  nic0 address 192.0.2.2/24 gateway 192.0.2.1 dns 192.0.2.53
interface lan  nic1 address 10.1.0.1/24
interface dmz  nic2 address 10.2.0.1/29
interface void nic3
client desk 10.1.0.10 on lan max-states 100
client box  10.2.0.3 on dmz
table private { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 }
nat from { lan, dmz } to wan
forward wan tcp port 2200-2207 to box port 22
forward wan udp port 6000 to box
dns from dmz to 9.9.9.9, 1.1.1.1
pass from lan to self { icmp, icmp6 } type { echo-request, unreachable code port-unreachable }
reject log from desk to !<private> tcp port { 25, 465-587 }
pass from desk to any sctp port 9000 max-states 5
block from lan to 203.0.113.0/25
pass log from lan to !<private> max-src-states 20
pass from box port 1024-65535 to wan udp
pass forwarded from wan to box tcp port 22-29
pass from dmz to wan proto { 47, 50 }
pass from dmz to 9.9.9.9 { tcp, udp } port 53
pass from wan to self icmp type 13
default reject log
";

fn compile(name: &str, text: &str) -> Compiled {
    rules::compile(name, text).unwrap_or_else(|error| panic!("{}", error.render()))
}

fn workspace_ruleset(path: &str) -> Compiled {
    let full = workspace().unwrap().root.join(path);
    compile(path, &std::fs::read_to_string(&full).unwrap())
}

/// The rulesets of the project that the comparator may be asked to run, and [`CORNERS`].
fn rulesets() -> Vec<(String, Compiled, u8)> {
    let mut out: Vec<(String, Compiled, u8)> = [
        ("rules/default.rules", 2),
        ("qemu-tests/rules/forwarding.rules", 3),
        ("qemu-tests/rules/every-nic.rules", 8),
        ("rules/examples/locked-down.rules", 2),
        ("rules/examples/generated-1000.rules", 4),
    ]
    .into_iter()
    .map(|(path, nics)| (path.to_string(), workspace_ruleset(path), nics))
    .collect();
    out.push(("corners".into(), compile("corners.rules", CORNERS), 4));
    out
}

/// Values worth trying in each field: every bound of every rule's ranges and its
/// neighbours, and a few others.
struct Interesting {
    addresses: Vec<u32>,
    ports: Vec<u16>,
    icmp: Vec<u8>,
}

impl Interesting {
    fn of(compiled: &Compiled) -> Interesting {
        let mut values = Interesting {
            addresses: vec![0, 1, 0x0a00_0001, 0x08080808, 0xc633_6450, u32::MAX],
            ports: vec![0, 1, 53, 80, 443, 40000, 65535],
            icmp: vec![0, 3, 8, 11, 13, 128, 255],
        };
        let neighbours = |value: u128| [value.saturating_sub(1), value, value.saturating_add(1)];
        for part in compiled.checked.rules.iter().flat_map(|rule| &rule.parts) {
            for field in [Field::Src, Field::Dst] {
                for &(first, last) in part.get(field).ranges() {
                    for value in neighbours(first).into_iter().chain(neighbours(last)) {
                        values.addresses.extend(flow_addr_to_ipv4(value));
                    }
                }
            }
            for field in [Field::SrcPort, Field::DstPort] {
                for &(first, last) in part.get(field).ranges() {
                    for value in neighbours(first).into_iter().chain(neighbours(last)) {
                        values.ports.extend(u16::try_from(value).ok());
                    }
                }
            }
            for field in [Field::IcmpType, Field::IcmpCode] {
                for &(first, last) in part.get(field).ranges() {
                    for value in neighbours(first).into_iter().chain(neighbours(last)) {
                        values.icmp.extend(u8::try_from(value).ok());
                    }
                }
            }
        }
        for client in &compiled.checked.clients {
            values.addresses.extend(client.ipv4.map(u32::from));
        }
        for interface in &compiled.checked.interfaces {
            values.addresses.extend(interface.address().map(u32::from));
        }
        values.addresses.sort_unstable();
        values.addresses.dedup();
        values.ports.sort_unstable();
        values.ports.dedup();
        values.icmp.sort_unstable();
        values.icmp.dedup();
        values
    }
}

/// A flow key as the data plane makes them: ports only for TCP and UDP, ICMP type and code
/// only for ICMP; to `self` only when addressed to one of the VM's own destinations.
/// Packets to the VM itself are addressed to one of `own` (what routing sends to `self`).
fn key(rng: &mut SplitMix64, values: &Interesting, own: &[u32], nics: u8) -> FlowKey {
    let protocol = *rng.pick(&[1u8, 6, 17, 6, 17, 47, 58, 132, 0, 255]);
    let (src_port, dst_port) = if matches!(protocol, 6 | 17 | 132) {
        (*rng.pick(&values.ports), *rng.pick(&values.ports))
    } else {
        (0, 0)
    };
    let (icmp_type, icmp_code) = if protocol == 1 {
        (*rng.pick(&values.icmp), *rng.pick(&values.icmp))
    } else {
        (0, 0)
    };
    let out = if rng.below(4) == 0 {
        OUT_SELF
    } else {
        rng.below(u64::from(nics)) as u8
    };
    let dst = if out == OUT_SELF {
        *rng.pick(own)
    } else {
        *rng.pick(&values.addresses)
    };
    FlowKey {
        in_nic: rng.below(u64::from(nics)) as u8,
        out,
        protocol,
        src: ipv4_to_flow_addr(*rng.pick(&values.addresses)),
        dst: ipv4_to_flow_addr(dst),
        src_port,
        dst_port,
        icmp_type,
        icmp_code,
        redirect: *rng.pick(&[REDIRECT_NONE, REDIRECT_NONE, REDIRECT_FORWARD, REDIRECT_DNS]),
    }
}

/// `key` with the fields its protocol does not have set to 0, as the data plane makes keys.
fn as_the_data_plane_makes_it(mut key: FlowKey) -> FlowKey {
    if !matches!(key.protocol, 6 | 17 | 132) {
        (key.src_port, key.dst_port) = (0, 0);
    }
    if key.protocol != 1 {
        (key.icmp_type, key.icmp_code) = (0, 0);
    }
    key
}

#[test]
fn translated_filters_decide_every_key_as_the_data_plane_does() {
    for (name, compiled, nics) in rulesets() {
        let translated = translate(&compiled.checked, nics).unwrap();
        let policy = compiled.policy.as_policy();
        let values = Interesting::of(&compiled);
        // A fixed seed: the same keys on every run (the coverage check below depends on them).
        let mut rng = SplitMix64::new(7);
        let mut decided = std::collections::HashSet::new();
        let samples: Vec<FlowKey> = compiled
            .checked
            .rules
            .iter()
            .flat_map(|rule| &rule.parts)
            .filter_map(|part| part.sample())
            .map(as_the_data_plane_makes_it)
            .filter(|key| {
                key.out != OUT_SELF || own_destinations(&compiled.checked).contains(key.dst)
            })
            .collect();
        let own: Vec<u32> = own_destinations(&compiled.checked)
            .ranges()
            .iter()
            .filter_map(|&(first, _)| flow_addr_to_ipv4(first))
            .collect();
        let random = (0..30_000).map(|_| key(&mut rng, &values, &own, nics));
        for key in samples.into_iter().chain(random) {
            let moat = policy.decide(&key);
            let linux = translated.decide(&key);
            assert_eq!(
                linux,
                (moat.action, moat.log),
                "{name}: {key:?} is decided differently (Moat by rule {:?})",
                moat.rule
            );
            decided.insert(moat.rule);
        }
        // The keys reach deep into the ruleset, not only its default.
        assert!(
            decided.len() > compiled.checked.rules.len().min(100),
            "{name}: only {} rules decided any key",
            decided.len()
        );
    }
}

#[test]
fn translated_anti_spoofing_refuses_what_the_data_plane_refuses() {
    for (name, compiled, nics) in rulesets() {
        let translated = translate(&compiled.checked, nics).unwrap();
        let policy = compiled.policy.as_policy();
        let macs: Vec<EthernetAddress> = (0..nics)
            .map(|nic| EthernetAddress([2, 0, 0, 0, 0, nic]))
            .collect();
        let config = ApplianceConfig::from_policy(&policy, &macs);
        let filter = SourceFilter::new(&Topology::from_policy(&config.nics, &policy));
        let values = Interesting::of(&compiled);
        let mut sources = values.addresses.clone();
        for interface in &compiled.checked.interfaces {
            if let Some((network, len)) = interface.network() {
                let size = 1u32 << (32 - u32::from(len));
                let base = u32::from(network);
                sources.extend([base, base + 1, base + size / 2, base + size - 1]);
            }
        }
        for nic in 0..nics {
            for &source in &sources {
                let src = Ipv4Addr::from(source);
                assert_eq!(
                    translated.refuses_source(nic, src),
                    filter.check(nic, Ipv4Address::from_bits(source)).is_err(),
                    "{name}: source {src} on nic{nic}"
                );
            }
        }
    }
}

fn nft_accepts(name: &str, ruleset: &str) {
    let dir = std::env::temp_dir().join(format!("moat-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ruleset.nft");
    std::fs::write(&file, ruleset).unwrap();
    // In a network namespace of its own: the host's ruleset is never touched, even checked.
    let output = Command::new("unshare")
        .args(["--net", "nft", "-c", "-f"])
        .arg(&file)
        .output()
        .expect("running unshare --net nft");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{name}: nft -c refuses the translation: {}\n{ruleset}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn nft_accepts_every_translation() {
    let available = Command::new("nft").arg("--version").output().is_ok();
    if !available || !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must check the translations with nft: run as root with nftables installed (scripts/setup)"
        );
        notice("SKIPPED nft_accepts_every_translation: needs root and nft (scripts/setup installs nftables)");
        return;
    }
    for (name, compiled, nics) in rulesets() {
        let translated: NftPolicy = translate(&compiled.checked, nics).unwrap();
        nft_accepts(&name, &translated.render());
        // Loaded in pieces, as the VM loads big rulesets.
        nft_accepts(&name, &translated.render_files(2).concat());
    }
}

#[test]
fn what_has_no_static_translation_is_refused_not_approximated() {
    let home = workspace_ruleset("rules/examples/home-router.rules");
    let error = translate(&home.checked, 4).unwrap_err();
    assert!(error.contains("DHCP"), "{error}");
    let forwarding = workspace_ruleset("qemu-tests/rules/forwarding.rules");
    let error = translate(&forwarding.checked, 2).unwrap_err();
    assert!(error.contains("nic2"), "{error}");
    let options = compile(
        "options.rules",
        &CORNERS.replace(
            "pass from dmz to wan proto { 47, 50 }",
            "pass from dmz to wan proto { 47, 50 } allow-opts",
        ),
    );
    let error = translate(&options.checked, 4).unwrap_err();
    assert!(error.contains("allows IP options"), "{error}");
    let pinned = compile(
        "pinned.rules",
        &CORNERS.replace(
            "client box  10.2.0.3 on dmz",
            "client box  10.2.0.3 mac 02:00:00:00:02:03 on dmz",
        ),
    );
    let error = translate(&pinned.checked, 4).unwrap_err();
    assert!(error.contains("pinned MAC"), "{error}");
}

#[test]
fn the_qubes_like_policy_reads_as_an_nftables_firewall() {
    let forwarding = workspace_ruleset("qemu-tests/rules/forwarding.rules");
    let translated = translate(&forwarding.checked, 3).unwrap();
    let text = translated.render();
    // In pieces: the base chains jump to chains of at most two rules each, in order.
    let pieces = translated.render_files(2);
    assert_eq!(pieces.len(), 1 + 3 + 1, "head, forward_0..2, base chains");
    assert!(pieces[4].contains(
        "jump forward_0\n\t\tjump forward_1\n\t\tjump forward_2\n\t\tjump log_block # default"
    ));
    for expected in [
        "iifname \"nic0\" ip daddr 10.0.2.15 tcp dport 8080 ct mark set 1 dnat to 10.137.1.2:80",
        "iifname \"nic1\" ip daddr 10.137.1.1 meta l4proto { 6, 17 } th dport 53 ct mark set 2 dnat to 198.51.100.53",
        "iifname \"nic2\" oifname \"nic0\" masquerade",
        "iifname \"nic1\" ip saddr != 10.137.1.2 jump log_spoofed",
        "iifname \"nic0\" ip saddr 10.137.1.0-10.137.2.255 jump log_spoofed",
        "iifname { \"nic1\", \"nic2\" } meta l4proto 1 icmp type 8 accept # 24:1",
        "iifname { \"nic1\", \"nic2\" } oifname \"nic0\" meta l4proto 6 th dport 81 jump log_reject # 25:1",
        "iifname { \"nic1\", \"nic2\" } oifname \"nic0\" accept # 27:1",
        "iifname \"nic0\" ip daddr 10.137.1.2 ct mark 1 oifname \"nic1\" meta l4proto 6 th dport 80 accept",
        "ct state established,related accept",
        "jump log_block # default",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}
