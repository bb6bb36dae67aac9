//! The hostile IPv6 corpus: scenarios for long extension-header chains, routing type 0,
//! tiny and overlapping fragments, first fragments without the whole upper-layer header
//! (RFC 7112), rogue router advertisements and neighbour advertisements from clients,
//! spoofed sources, and DNS that crosses to an IPv4 resolver (with a fragment, a query to
//! the link-local address, TCP) — each played through the oracle here, and kept as a seed in
//! `seeds/appliance/` (the bytes `arbitrary` decodes into the scenario, written by
//! [`encode`]; `MOAT_WRITE_SEEDS=1 cargo test --test ipv6_corpus` rewrites them).
//!
//! Run: `cd kernel/dataplane/fuzz && cargo +nightly test --test ipv6_corpus`.

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use dataplane_fuzz::*;

/// Ruleset indices (see `world.rs`): the declared dual-stack ruleset (ULA clients behind
/// NAT66, RA on the clients' network), SLAAC uplink (the shipped default), routed
/// prefixes, 1280-byte uplink.
const DECLARED_DUAL_STACK: u8 = 6;
const SLAAC_DUAL_STACK: u8 = 5;
const ROUTED_DUAL_STACK: u8 = 7;
const SMALL_MTU_DUAL_STACK: u8 = 8;

/// The clients' NIC and the uplink.
const CLIENTS: u8 = 1;
const UPLINK: u8 = 0;
/// `PORTS` index of 443 and 22.
const HTTPS: PortPick = PortPick::Known(6);
const SSH: PortPick = PortPick::Known(0);
/// `PORTS` index of 53.
const DNS: PortPick = PortPick::Known(2);

fn from_host(host: u8) -> Link {
    Link {
        src: MacPick::Host(host),
        dst: LinkDst::Appliance,
    }
}

fn syn(dst_port: PortPick) -> TransportPick {
    TransportPick::Tcp {
        src_port: PortPick::Any(40000),
        dst_port,
        seq: 1000,
        ack: 0,
        flags: 0x02,
        len: 0,
    }
}

/// A packet from `src` to `dst` with `transport`, whole, hop limit 64, no extensions.
fn packet(src: Addr6Pick, dst: Addr6Pick, transport: TransportPick) -> Packet6 {
    Packet6 {
        src,
        dst,
        hop_limit: 64,
        extensions: Vec::new(),
        fragment: FragmentPick::Whole,
        ident: 0x4d6f_6174,
        transport,
    }
}

/// `work` (fd00:137:1::10, host 0 of the clients' NIC) sends `packet`.
fn from_work(packet: Packet6) -> Step {
    Step::Send6 {
        nic: CLIENTS,
        link: from_host(0),
        packet,
    }
}

fn to_remote_https() -> Packet6 {
    packet(Addr6Pick::Local(0), Addr6Pick::Remote(0), syn(HTTPS))
}

/// The named scenarios of the corpus.
fn corpus() -> Vec<(&'static str, Scenario)> {
    let reply = Step::Reply {
        of: 0,
        flags: 0x12,
        seq: 77,
        len: 0,
    };
    let long_chain = Packet6 {
        extensions: vec![ExtensionPick::DestinationOptions; 12],
        ..to_remote_https()
    };
    let hop_by_hop_late = Packet6 {
        extensions: vec![
            ExtensionPick::DestinationOptions,
            ExtensionPick::HopByHop,
            ExtensionPick::DestinationOptions,
        ],
        ..to_remote_https()
    };
    let rh0 = |segments_left| Packet6 {
        extensions: vec![ExtensionPick::Routing {
            routing_type: 0,
            segments_left,
        }],
        ..to_remote_https()
    };
    let fragment = |fragment| Packet6 {
        fragment,
        ..to_remote_https()
    };
    // A SYN carrying twelve bytes: 40 in all, so that a first fragment of five units is
    // aligned and whole.
    let aligned = |fragment| Packet6 {
        fragment,
        transport: TransportPick::Tcp {
            src_port: PortPick::Any(40000),
            dst_port: HTTPS,
            seq: 1000,
            ack: 0,
            flags: 0x02,
            len: 12,
        },
        ..to_remote_https()
    };
    let chain_in_second_fragment = Packet6 {
        extensions: vec![ExtensionPick::DestinationOptions; 3],
        fragment: FragmentPick::First { words: 2 },
        ..to_remote_https()
    };
    vec![
        (
            "ipv6-flow-and-reply",
            Scenario {
                ruleset: DECLARED_DUAL_STACK,
                small_table: false,
                steps: vec![from_work(to_remote_https()), reply.clone()],
            },
        ),
        (
            "ipv6-long-extension-chain",
            Scenario {
                ruleset: DECLARED_DUAL_STACK,
                small_table: false,
                steps: vec![from_work(long_chain), from_work(hop_by_hop_late)],
            },
        ),
        (
            "ipv6-routing-type-0",
            Scenario {
                ruleset: ROUTED_DUAL_STACK,
                small_table: false,
                steps: vec![from_work(rh0(1)), from_work(rh0(0))],
            },
        ),
        (
            "ipv6-tiny-first-fragment",
            Scenario {
                ruleset: DECLARED_DUAL_STACK,
                small_table: false,
                steps: vec![
                    // Eight bytes: the TCP ports, not the flags (RFC 7112).
                    from_work(fragment(FragmentPick::First { words: 1 })),
                    from_work(fragment(FragmentPick::First { words: 0 })),
                    from_work(chain_in_second_fragment),
                ],
            },
        ),
        (
            "ipv6-overlapping-fragments",
            Scenario {
                ruleset: SMALL_MTU_DUAL_STACK,
                small_table: false,
                steps: vec![
                    // Overlap-free, aligned, the whole TCP header: forwarded.
                    from_work(aligned(FragmentPick::First { words: 5 })),
                    // Overwrites the TCP header's second half, then the ports.
                    from_work(aligned(FragmentPick::Piece {
                        from: 2,
                        len: 2,
                        offset: 1,
                        more: true,
                    })),
                    from_work(aligned(FragmentPick::Piece {
                        from: 0,
                        len: 1,
                        offset: 0,
                        more: false,
                    })),
                    // Past 64 KiB.
                    from_work(aligned(FragmentPick::Piece {
                        from: 1,
                        len: 255,
                        offset: 0x1fff,
                        more: false,
                    })),
                ],
            },
        ),
        (
            "ipv6-rogue-router-advert-from-client",
            Scenario {
                ruleset: SLAAC_DUAL_STACK,
                small_table: false,
                steps: vec![
                    Step::Nd {
                        nic: CLIENTS,
                        link: Link {
                            src: MacPick::Host(1),
                            dst: LinkDst::Multicast,
                        },
                        src: Addr6Pick::Local(5),
                        dst: Addr6Pick::AllNodes,
                        hop_limit_255: true,
                        message: NdPick::RouterAdvert {
                            lifetime: 1800,
                            prefix: Some(PrefixPick {
                                prefix: Prefix6Pick::OfNic(UPLINK),
                                on_link: true,
                                autonomous: true,
                                valid: 86_400,
                                preferred: 14_400,
                            }),
                            mtu: Some(1280),
                            lladdr: Some(MacPick::Host(1)),
                        },
                    },
                    from_work(to_remote_https()),
                ],
            },
        ),
        (
            "ipv6-neighbour-advert-takeover",
            Scenario {
                ruleset: DECLARED_DUAL_STACK,
                small_table: false,
                steps: [Addr6Pick::Local(1), Addr6Pick::Appliance(CLIENTS)]
                    .into_iter()
                    .map(|target| Step::Nd {
                        nic: CLIENTS,
                        link: from_host(2),
                        src: Addr6Pick::Local(2),
                        dst: Addr6Pick::AllNodes,
                        hop_limit_255: true,
                        message: NdPick::NeighborAdvert {
                            target,
                            solicited: false,
                            override_: true,
                            router: false,
                            lladdr: Some(MacPick::Host(2)),
                        },
                    })
                    .chain([
                        from_work(packet(Addr6Pick::Remote(0), Addr6Pick::Local(1), syn(SSH))),
                        Step::Send6 {
                            nic: UPLINK,
                            link: from_host(0),
                            packet: packet(
                                Addr6Pick::Remote(0),
                                Addr6Pick::OnNic(CLIENTS, 1),
                                TransportPick::Echo {
                                    request: true,
                                    ident: 7,
                                    seq_no: 1,
                                },
                            ),
                        },
                    ])
                    .collect(),
            },
        ),
        (
            "ipv6-spoofed-and-link-local",
            Scenario {
                ruleset: DECLARED_DUAL_STACK,
                small_table: false,
                steps: vec![
                    // Another client's address, a remote's, a link-local one off-link.
                    from_work(packet(
                        Addr6Pick::Local(1),
                        Addr6Pick::Remote(0),
                        syn(HTTPS),
                    )),
                    from_work(packet(
                        Addr6Pick::Remote(1),
                        Addr6Pick::Remote(0),
                        syn(HTTPS),
                    )),
                    from_work(packet(
                        Addr6Pick::Local(6),
                        Addr6Pick::Remote(0),
                        syn(HTTPS),
                    )),
                    from_work(packet(
                        Addr6Pick::Local(0),
                        Addr6Pick::GlobalMulticast,
                        syn(HTTPS),
                    )),
                ],
            },
        ),
        (
            "ipv6-error-quoting-masqueraded-flow",
            Scenario {
                ruleset: DECLARED_DUAL_STACK,
                small_table: false,
                steps: vec![
                    from_work(to_remote_https()),
                    Step::Error {
                        of: 0,
                        from: ErrorSender::Gateway,
                        kind: ErrorKind::FragmentationNeeded(1280),
                        seq_shift: 0,
                        extra_quote: 12,
                    },
                    Step::Error {
                        of: 0,
                        from: ErrorSender::Other(AddrPick::OnNic(CLIENTS, 1)),
                        kind: ErrorKind::Unreachable(4),
                        seq_shift: 1 << 30,
                        extra_quote: 0,
                    },
                ],
            },
        ),
        (
            "ipv6-dns-crossing-to-ipv4",
            Scenario {
                // The shipped default: the uplink's only resolver is IPv4 (10.0.2.3).
                ruleset: SLAAC_DUAL_STACK,
                small_table: false,
                steps: vec![
                    // A query to the appliance's address crosses to IPv4; the resolver's
                    // answer and its port unreachable cross back.
                    from_work(dns_query(
                        Addr6Pick::Appliance(CLIENTS),
                        FragmentPick::Whole,
                    )),
                    Step::Reply {
                        of: 0,
                        flags: 0,
                        seq: 0,
                        len: 48,
                    },
                    Step::Error {
                        of: 1,
                        from: ErrorSender::Destination,
                        kind: ErrorKind::Unreachable(3),
                        seq_shift: 0,
                        extra_quote: 8,
                    },
                    // A tiny first fragment opening a flow of its own (it cannot cross,
                    // and leaves no state: the same query whole is decided anew), a
                    // query to the link-local address (never redirected), DNS over TCP.
                    from_work(dns_query_from(
                        40001,
                        Addr6Pick::Appliance(CLIENTS),
                        FragmentPick::First { words: 1 },
                    )),
                    from_work(dns_query_from(
                        40001,
                        Addr6Pick::Appliance(CLIENTS),
                        FragmentPick::Whole,
                    )),
                    from_work(dns_query(
                        Addr6Pick::ApplianceLinkLocal(CLIENTS),
                        FragmentPick::Whole,
                    )),
                    from_work(packet(
                        Addr6Pick::Local(0),
                        Addr6Pick::Appliance(CLIENTS),
                        syn(DNS),
                    )),
                ],
            },
        ),
    ]
}

/// A 40-byte DNS query from `work`'s port 40000 to `dst`, as `fragment` says.
fn dns_query(dst: Addr6Pick, fragment: FragmentPick) -> Packet6 {
    dns_query_from(40000, dst, fragment)
}

/// A 40-byte DNS query from `work`'s port `port` to `dst`, as `fragment` says.
fn dns_query_from(port: u16, dst: Addr6Pick, fragment: FragmentPick) -> Packet6 {
    Packet6 {
        fragment,
        ..packet(
            Addr6Pick::Local(0),
            dst,
            TransportPick::Udp {
                src_port: PortPick::Any(port),
                dst_port: DNS,
                len: 40,
            },
        )
    }
}

/// The corpus scenario named `name`.
fn scenario(name: &str) -> Scenario {
    corpus()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, scenario)| scenario)
        .unwrap_or_else(|| panic!("no scenario {name} in the corpus"))
}

#[test]
fn a_dns_query_crosses_to_ipv4_and_its_answer_back() {
    let mut head = scenario("ipv6-dns-crossing-to-ipv4");
    head.steps.truncate(2);
    let summary = run(&head);
    assert_eq!(
        (summary.forwarded4, summary.forwarded6),
        (1, 1),
        "{summary:?}"
    );
}

#[test]
fn an_ordinary_ipv6_flow_is_forwarded_both_ways() {
    let (_, scenario) = &corpus()[0];
    let summary = run(scenario);
    assert!(summary.forwarded6 >= 2, "{summary:?}");
}

#[test]
fn the_hostile_ipv6_corpus_holds_every_invariant() {
    for (name, scenario) in corpus() {
        let summary = run(&scenario);
        println!("{name}: {summary:?}");
    }
}

#[test]
fn long_chains_routing_type_0_and_tiny_first_fragments_are_not_forwarded() {
    for name in [
        "ipv6-long-extension-chain",
        "ipv6-routing-type-0",
        "ipv6-tiny-first-fragment",
    ] {
        // Only the last step of each may pass (a RH0 with no segments left, an
        // ordinary-sized first fragment behind a short chain).
        let mut head = scenario(name);
        head.steps.pop();
        assert_eq!(run(&head).forwarded6, 0, "{name}");
    }
}

#[test]
fn only_the_whole_first_fragment_of_the_overlapping_ones_is_forwarded() {
    assert_eq!(run(&scenario("ipv6-overlapping-fragments")).forwarded6, 1);
}

#[test]
fn the_seeds_decode_into_the_corpus() {
    for (name, scenario) in corpus() {
        let bytes = encode(&scenario);
        let decoded = Scenario::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{scenario:?}"), "{name}");
        let path = seeds().join(name);
        if std::env::var_os("MOAT_WRITE_SEEDS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == bytes,
            "{} is stale: MOAT_WRITE_SEEDS=1",
            path.display()
        );
    }
}

fn seeds() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/appliance")
}

/// The bytes `arbitrary` (1.x) decodes into `scenario`: little-endian integers, a bool as
/// a byte, an enum's variant `i` of `n` as a `u32` `t` with `t * n >> 32 == i`, a `Vec` or
/// `Option` element preceded by a true byte, a `Vec` ended by a false one.
fn encode(scenario: &Scenario) -> Vec<u8> {
    let mut out = Enc(Vec::new());
    out.u8(scenario.ruleset);
    out.bool(scenario.small_table);
    for step in &scenario.steps {
        out.bool(true);
        out.step(step);
    }
    out.0
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    fn u16(&mut self, v: u16) {
        self.0.extend(v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend(v.to_le_bytes());
    }
    fn variant(&mut self, index: u64, count: u64) {
        self.u32(((index << 32).div_ceil(count)) as u32);
    }
    fn option<T>(&mut self, v: &Option<T>, mut f: impl FnMut(&mut Self, &T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            f(self, v);
        }
    }

    fn step(&mut self, step: &Step) {
        const STEPS: u64 = 11;
        match step {
            Step::Reply {
                of,
                flags,
                seq,
                len,
            } => {
                self.variant(1, STEPS);
                self.u16(*of);
                self.u8(*flags);
                self.u32(*seq);
                self.u8(*len);
            }
            Step::Error {
                of,
                from,
                kind,
                seq_shift,
                extra_quote,
            } => {
                self.variant(2, STEPS);
                self.u16(*of);
                match from {
                    ErrorSender::Destination => self.variant(0, 3),
                    ErrorSender::Gateway => self.variant(1, 3),
                    ErrorSender::Other(pick) => {
                        self.variant(2, 3);
                        self.addr(pick);
                    }
                }
                match kind {
                    ErrorKind::Unreachable(code) => {
                        self.variant(0, 5);
                        self.u8(*code);
                    }
                    ErrorKind::FragmentationNeeded(mtu) => {
                        self.variant(1, 5);
                        self.u16(*mtu);
                    }
                    ErrorKind::TimeExceeded => self.variant(2, 5),
                    ErrorKind::ParameterProblem => self.variant(3, 5),
                    ErrorKind::SourceQuench => self.variant(4, 5),
                }
                self.u32(*seq_shift);
                self.u8(*extra_quote);
            }
            Step::Send6 { nic, link, packet } => {
                self.variant(7, STEPS);
                self.u8(*nic);
                self.link(link);
                self.packet6(packet);
            }
            Step::Nd {
                nic,
                link,
                src,
                dst,
                hop_limit_255,
                message,
            } => {
                self.variant(8, STEPS);
                self.u8(*nic);
                self.link(link);
                self.addr6(src);
                self.addr6(dst);
                self.bool(*hop_limit_255);
                self.nd(message);
            }
            Step::Advance { millis } => {
                self.variant(9, STEPS);
                self.u16(*millis);
            }
            other => panic!("no encoding written for {other:?}"),
        }
    }

    fn link(&mut self, link: &Link) {
        self.mac(&link.src);
        match link.dst {
            LinkDst::Appliance => self.variant(0, 4),
            LinkDst::Broadcast => self.variant(1, 4),
            LinkDst::Multicast => self.variant(2, 4),
            LinkDst::Other(pick) => {
                self.variant(3, 4);
                self.mac(&pick);
            }
        }
    }

    fn mac(&mut self, mac: &MacPick) {
        match mac {
            MacPick::Host(n) => {
                self.variant(0, 6);
                self.u8(*n);
            }
            MacPick::Appliance(n) => {
                self.variant(1, 6);
                self.u8(*n);
            }
            MacPick::Broadcast => self.variant(2, 6),
            MacPick::Multicast => self.variant(3, 6),
            MacPick::Zero => self.variant(4, 6),
            MacPick::Any(bytes) => {
                self.variant(5, 6);
                self.0.extend(bytes);
            }
        }
    }

    fn addr(&mut self, pick: &AddrPick) {
        match pick {
            AddrPick::Local(n) => {
                self.variant(0, 7);
                self.u8(*n);
            }
            AddrPick::OnNic(n, h) => {
                self.variant(1, 7);
                self.u8(*n);
                self.u8(*h);
            }
            AddrPick::Remote(n) => {
                self.variant(2, 7);
                self.u8(*n);
            }
            AddrPick::Appliance(n) => {
                self.variant(3, 7);
                self.u8(*n);
            }
            AddrPick::Broadcast => self.variant(4, 7),
            AddrPick::Directed(n) => {
                self.variant(5, 7);
                self.u8(*n);
            }
            AddrPick::Any(bits) => {
                self.variant(6, 7);
                self.u32(*bits);
            }
        }
    }

    fn addr6(&mut self, pick: &Addr6Pick) {
        const N: u64 = 11;
        match pick {
            Addr6Pick::Local(n) => {
                self.variant(0, N);
                self.u8(*n);
            }
            Addr6Pick::OnNic(n, h) => {
                self.variant(1, N);
                self.u8(*n);
                self.u8(*h);
            }
            Addr6Pick::Remote(n) => {
                self.variant(2, N);
                self.u8(*n);
            }
            Addr6Pick::Appliance(n) => {
                self.variant(3, N);
                self.u8(*n);
            }
            Addr6Pick::ApplianceLinkLocal(n) => {
                self.variant(4, N);
                self.u8(*n);
            }
            Addr6Pick::AllNodes => self.variant(5, N),
            Addr6Pick::AllRouters => self.variant(6, N),
            Addr6Pick::SolicitedNode => self.variant(7, N),
            Addr6Pick::GlobalMulticast => self.variant(8, N),
            Addr6Pick::Unspecified => self.variant(9, N),
            Addr6Pick::Any(bytes) => {
                self.variant(10, N);
                self.0.extend(bytes);
            }
        }
    }

    fn port(&mut self, pick: &PortPick) {
        match pick {
            PortPick::Known(n) => {
                self.variant(0, 2);
                self.u8(*n);
            }
            PortPick::Any(p) => {
                self.variant(1, 2);
                self.u16(*p);
            }
        }
    }

    fn packet6(&mut self, packet: &Packet6) {
        self.addr6(&packet.src);
        self.addr6(&packet.dst);
        self.u8(packet.hop_limit);
        for extension in &packet.extensions {
            self.bool(true);
            match extension {
                ExtensionPick::HopByHop => self.variant(0, 4),
                ExtensionPick::DestinationOptions => self.variant(1, 4),
                ExtensionPick::Routing {
                    routing_type,
                    segments_left,
                } => {
                    self.variant(2, 4);
                    self.u8(*routing_type);
                    self.u8(*segments_left);
                }
                ExtensionPick::Fragment {
                    offset,
                    more,
                    ident,
                } => {
                    self.variant(3, 4);
                    self.u16(*offset);
                    self.bool(*more);
                    self.u32(*ident);
                }
            }
        }
        self.bool(false);
        match packet.fragment {
            FragmentPick::Whole => self.variant(0, 3),
            FragmentPick::First { words } => {
                self.variant(1, 3);
                self.u8(words);
            }
            FragmentPick::Piece {
                from,
                len,
                offset,
                more,
            } => {
                self.variant(2, 3);
                self.u8(from);
                self.u8(len);
                self.u16(offset);
                self.bool(more);
            }
        }
        self.u32(packet.ident);
        self.transport(&packet.transport);
    }

    fn transport(&mut self, transport: &TransportPick) {
        const N: u64 = 6;
        match *transport {
            TransportPick::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                len,
            } => {
                self.variant(0, N);
                self.port(&src_port);
                self.port(&dst_port);
                self.u32(seq);
                self.u32(ack);
                self.u8(flags);
                self.u8(len);
            }
            TransportPick::Udp {
                src_port,
                dst_port,
                len,
            } => {
                self.variant(1, N);
                self.port(&src_port);
                self.port(&dst_port);
                self.u8(len);
            }
            TransportPick::Echo {
                request,
                ident,
                seq_no,
            } => {
                self.variant(2, N);
                self.bool(request);
                self.u16(ident);
                self.u16(seq_no);
            }
            ref other => panic!("no encoding written for {other:?}"),
        }
    }

    fn nd(&mut self, message: &NdPick) {
        const N: u64 = 5;
        match message {
            NdPick::RouterAdvert {
                lifetime,
                prefix,
                mtu,
                lladdr,
            } => {
                self.variant(1, N);
                self.u16(*lifetime);
                self.option(prefix, |e, p| {
                    match p.prefix {
                        Prefix6Pick::OfNic(n) => {
                            e.variant(0, 2);
                            e.u8(n);
                        }
                        Prefix6Pick::Any(bytes, len) => {
                            e.variant(1, 2);
                            e.0.extend(bytes);
                            e.u8(len);
                        }
                    }
                    e.bool(p.on_link);
                    e.bool(p.autonomous);
                    e.u32(p.valid);
                    e.u32(p.preferred);
                });
                self.option(mtu, |e, m| e.u16(*m));
                self.option(lladdr, |e, m| e.mac(m));
            }
            NdPick::NeighborAdvert {
                target,
                solicited,
                override_,
                router,
                lladdr,
            } => {
                self.variant(3, N);
                self.addr6(target);
                self.bool(*solicited);
                self.bool(*override_);
                self.bool(*router);
                self.option(lladdr, |e, m| e.mac(m));
            }
            other => panic!("no encoding written for {other:?}"),
        }
    }
}
