//! Declarations: interfaces, clients, tables, NAT, port forwards, DNS, the default.

use super::{words, PResult, Parser};
use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::TokenKind;
use crate::names;
use crate::source::Loc;

impl Parser<'_> {
    /// `interface NAME nicN [dhcp | address A/P [gateway G]] [dns A, ...] [mtu N]
    /// [slaac | address6 A/P [gateway6 G]] [ra]`
    pub(super) fn interface(&mut self, start: Loc) -> PResult<InterfaceDecl> {
        let name = self.name("interface")?;
        let (nic_text, nic_loc) = self.word("a NIC ('nic0' .. 'nic7')")?;
        let nic = match nic_text.strip_prefix("nic") {
            Some(n) => {
                words::number(n, nic_loc, "NIC number", u64::from(u32::MAX)).map_err(|_| {
                    Diagnostic::error(
                        nic_loc,
                        format!("'{nic_text}' is not a NIC: write nic0 .. nic7"),
                    )
                })?
            }
            None => return Err(Diagnostic::error(
                nic_loc,
                format!("expected a NIC ('nic0' .. 'nic7'), found '{nic_text}'"),
            )
            .with_hint(
                "interfaces are declared as: interface NAME nicN (dhcp | address A/P [gateway G])",
            )),
        };
        let nic = Located {
            value: nic as u32,
            loc: nic_loc,
        };
        let mut addressing = Addressing::None;
        let mut gateway: Option<Located<std::net::Ipv4Addr>> = None;
        let mut dns = Vec::new();
        let mut mtu: Option<Located<u32>> = None;
        let mut addressing6 = Addressing6::None;
        let mut gateway6: Option<Located<std::net::Ipv6Addr>> = None;
        let mut ra: Option<Loc> = None;
        while !self.at_end() {
            let (word, loc) = self.word(
                "'dhcp', 'address', 'gateway', 'dns', 'mtu', 'slaac', 'address6', 'gateway6' or 'ra'",
            )?;
            match word {
                "slaac" if addressing6 == Addressing6::None => {
                    addressing6 = Addressing6::Slaac(loc)
                }
                "address6" if addressing6 == Addressing6::None => {
                    let (text, loc) = self.word("an IPv6 address with prefix length (A/P)")?;
                    let (address, prefix_len) = words::ipv6_with_prefix(text, loc)?;
                    addressing6 = Addressing6::Static {
                        address: Located {
                            value: address,
                            loc,
                        },
                        prefix_len,
                        gateway: None,
                    };
                }
                "slaac" | "address6" => {
                    return Err(Diagnostic::error(
                        loc,
                        "the interface's IPv6 address is already given",
                    )
                    .with_hint("an interface has either 'slaac' or one 'address6 A/P'"))
                }
                "gateway6" if gateway6.is_none() => {
                    let (text, loc) = self.word("the IPv6 gateway's address")?;
                    gateway6 = Some(Located {
                        value: words::ipv6(text, loc)?,
                        loc,
                    });
                }
                "ra" if ra.is_none() => ra = Some(loc),
                "dhcp" if addressing == Addressing::None => addressing = Addressing::Dhcp(loc),
                "address" if addressing == Addressing::None => {
                    let (text, loc) = self.word("an address with prefix length (A/P)")?;
                    let (address, prefix_len) = words::ipv4_with_prefix(text, loc)?;
                    addressing = Addressing::Static {
                        address: Located {
                            value: address,
                            loc,
                        },
                        prefix_len,
                        gateway: None,
                    };
                }
                "dhcp" | "address" => {
                    return Err(
                        Diagnostic::error(loc, "the interface's address is already given")
                            .with_hint("an interface has either 'dhcp' or one 'address A/P'"),
                    )
                }
                "gateway" if gateway.is_none() => {
                    let (text, loc) = self.word("the gateway's address")?;
                    gateway = Some(Located {
                        value: words::ipv4(text, loc)?,
                        loc,
                    });
                }
                "dns" if dns.is_empty() => {
                    dns = self.comma_list(|p| {
                        let (text, loc) = p.word("a DNS server address")?;
                        Ok(Located {
                            value: words::ipv4(text, loc)?,
                            loc,
                        })
                    })?;
                }
                "mtu" if mtu.is_none() => {
                    let (text, loc) = self.word("the MTU in bytes")?;
                    let value = text.parse::<u32>().ok().filter(|v| (68..=1500).contains(v));
                    let Some(value) = value else {
                        return Err(Diagnostic::error(
                            loc,
                            format!("'{text}' is not a usable MTU"),
                        )
                        .with_hint(
                            "an MTU is 68 ..= 1500 bytes (the NICs carry 1,500-byte packets at most)",
                        ));
                    };
                    mtu = Some(Located { value, loc });
                }
                "gateway" | "dns" | "mtu" | "gateway6" | "ra" => {
                    return Err(Diagnostic::error(loc, format!("'{word}' given twice")))
                }
                other => {
                    return Err(Diagnostic::error(
                        loc,
                        format!("unexpected '{other}' in an interface declaration"),
                    )
                    .with_hint_opt(names::did_you_mean(
                        other,
                        [
                            "dhcp", "address", "gateway", "dns", "mtu", "slaac", "address6",
                            "gateway6", "ra",
                        ],
                    )))
                }
            }
        }
        if let Some(g) = gateway {
            match &mut addressing {
                Addressing::Static { gateway, .. } => *gateway = Some(g),
                _ => {
                    return Err(Diagnostic::error(g.loc, "a gateway needs a static address")
                        .with_hint(
                            "write: address A/P gateway G (with dhcp the gateway is learned)",
                        ))
                }
            }
        }
        if let Some(g) = gateway6 {
            match &mut addressing6 {
                Addressing6::Static { gateway, .. } => *gateway = Some(g),
                _ => {
                    return Err(Diagnostic::error(
                        g.loc,
                        "an IPv6 gateway needs a static IPv6 address",
                    )
                    .with_hint(
                        "write: address6 A/P gateway6 G (with slaac the router is learned)",
                    ))
                }
            }
        }
        Ok(InterfaceDecl {
            loc: self.since(start),
            name,
            nic,
            addressing,
            dns,
            mtu,
            addressing6,
            ra,
        })
    }

    /// `client NAME ADDR[, ADDR6] [mac MAC] on IFACE [mac MAC] [max-states N]` (`mac`
    /// once, before or after `on`).
    pub(super) fn client(&mut self, start: Loc) -> PResult<ClientDecl> {
        let name = self.name("client")?;
        let addresses = self.comma_list(|p| {
            let (text, loc) = p.word("the client's address")?;
            Ok(Located {
                value: words::ip(text, loc)?,
                loc,
            })
        })?;
        let mut mac = None;
        if self.eat_word("mac").is_some() {
            mac = Some(self.client_mac()?);
        }
        self.expect_word("on")?;
        let on = self.name("interface")?;
        let mut max_states = None;
        while !self.at_end() {
            let (word, loc) = self.word("'mac' or 'max-states'")?;
            match word {
                "mac" if mac.is_none() => mac = Some(self.client_mac()?),
                "max-states" if max_states.is_none() => {
                    let (text, n_loc) = self.word("a number of states")?;
                    max_states = Some(Located {
                        value: words::count(text, n_loc, "max-states")?,
                        loc: loc.to(n_loc),
                    });
                }
                "mac" | "max-states" => {
                    return Err(Diagnostic::error(loc, format!("'{word}' given twice")))
                }
                other => {
                    return Err(Diagnostic::error(
                        loc,
                        format!("unexpected '{other}' in a client declaration"),
                    )
                    .with_hint(
                        names::did_you_mean(other, ["mac", "max-states"]).unwrap_or_else(|| {
                            "a client reads: client NAME ADDR[, ADDR6] [mac MAC] on IFACE \
                             [max-states N]"
                                .to_string()
                        }),
                    ))
                }
            }
        }
        Ok(ClientDecl {
            loc: self.since(start),
            name,
            addresses,
            mac,
            on,
            max_states,
        })
    }

    /// The MAC after `mac` in a client declaration.
    fn client_mac(&mut self) -> PResult<Located<[u8; 6]>> {
        let (text, loc) = self.word("the client's MAC address")?;
        Ok(Located {
            value: words::mac(text, loc)?,
            loc,
        })
    }

    /// `table NAME { ENTRY, ... }` (the name may be written `<NAME>` as in pf).
    pub(super) fn table(&mut self, start: Loc) -> PResult<TableDecl> {
        let bracketed = self.eat(TokenKind::Lt).is_some();
        let name = self.name("table")?;
        if bracketed {
            self.expect_kind(TokenKind::Gt, "'>'")?;
        }
        if self.peek().kind != TokenKind::LBrace {
            return Err(self.expected("'{' and the table's addresses"));
        }
        let entries = self.list(|p| {
            if p.eat(TokenKind::Lt).is_some() {
                let name = p.name("table")?;
                p.expect_kind(TokenKind::Gt, "'>'")?;
                return Ok(TableEntry::Table(name));
            }
            let (text, loc) = p.word("an address or CIDR")?;
            Ok(TableEntry::Net(Located {
                value: words::network(text, loc)?,
                loc,
            }))
        })?;
        Ok(TableDecl {
            loc: self.since(start),
            name,
            entries,
        })
    }

    /// `nat from SCOPE to IFACE`
    pub(super) fn nat(&mut self, start: Loc) -> PResult<NatDecl> {
        self.expect_word("from")?;
        let from = self.scope()?;
        self.expect_word("to")?;
        let to = self.name("interface")?;
        Ok(NatDecl {
            loc: self.since(start),
            from,
            to,
        })
    }

    /// `forward IFACE PROTO port P[-Q] to TARGET [port R]`
    pub(super) fn forward(&mut self, start: Loc) -> PResult<ForwardDecl> {
        let on = self.name("interface")?;
        let protocols = self.protocols()?;
        self.expect_word("port")?;
        let (text, loc) = self.word("the external port or range")?;
        let ports = Located {
            value: words::port_range(text, loc)?,
            loc,
        };
        self.expect_word("to")?;
        let (text, loc) = self.word("the client to forward to")?;
        let target = if words::looks_like_address(text) {
            ForwardTarget::Address(Located {
                value: words::ip(text, loc)?,
                loc,
            })
        } else {
            ForwardTarget::Client(Located {
                value: words::name(text, loc, "client")?,
                loc,
            })
        };
        let mut target_port = None;
        if self.eat_word("port").is_some() {
            let (text, loc) = self.word("the internal port")?;
            target_port = Some(Located {
                value: words::port(text, loc)?,
                loc,
            });
        }
        Ok(ForwardDecl {
            loc: self.since(start),
            on,
            protocols,
            ports,
            target,
            target_port,
        })
    }

    /// `dns from SCOPE to upstream | to ADDR, ...`
    pub(super) fn dns(&mut self, start: Loc) -> PResult<DnsDecl> {
        self.expect_word("from")?;
        let from = self.scope()?;
        self.expect_word("to")?;
        let upstream = match self.eat_word("upstream") {
            Some(loc) => Upstream::Learned(loc),
            None => Upstream::Static(self.comma_list(|p| {
                let (text, loc) = p.word("'upstream' or a resolver's address")?;
                Ok(Located {
                    value: words::ipv4(text, loc)?,
                    loc,
                })
            })?),
        };
        Ok(DnsDecl {
            loc: self.since(start),
            from,
            upstream,
        })
    }

    /// `default block | reject [log]`
    pub(super) fn default_decl(&mut self, start: Loc) -> PResult<DefaultDecl> {
        let (word, loc) = self.word("'block' or 'reject'")?;
        let reject = match word {
            "block" => false,
            "reject" => true,
            "pass" => {
                return Err(Diagnostic::error(loc, "the default cannot be 'pass'")
                    .with_hint("the appliance fails closed: write pass rules for what may pass, and 'default block log'"))
            }
            other => return Err(Diagnostic::error(loc, format!("expected 'block' or 'reject', found '{other}'"))),
        };
        let log = self.eat_word("log").is_some();
        Ok(DefaultDecl {
            loc: self.since(start),
            reject,
            log,
        })
    }
}
