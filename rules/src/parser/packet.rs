//! Packet descriptions, used by `test` lines and by `explain`:
//! `PROTO SRC[:PORT] -> DST[:PORT] [on IFACE] [type T [code C]] [options OPTS] [mac MAC]
//! [broadcast]`.

use dataplane::drops::DropReason;
use dataplane::policy::Action;

use super::{words, PResult, Parser};
use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::TokenKind;
use crate::names::{self, PROTOCOLS};
use crate::source::Loc;

/// The clauses a packet description may have after its endpoints.
const PACKET_CLAUSES: [&str; 5] = ["on", "type", "options", "mac", "broadcast"];

/// How a packet description reads.
const PACKET_SYNTAX: &str = "a packet reads: PROTO SRC[:PORT] -> DST[:PORT] [on IFACE] \
     [type T [code C]] [options OPTS] [mac MAC] [broadcast]";

impl Parser<'_> {
    /// `test pass | block | reject [log] [because REASON] PACKET`
    pub(super) fn test(&mut self, start: Loc) -> PResult<TestDecl> {
        let (word, loc) = self.word("the expected verdict ('pass', 'block' or 'reject')")?;
        if !matches!(word, "pass" | "block" | "reject") {
            return Err(Diagnostic::error(
                loc,
                format!("expected 'pass', 'block' or 'reject', found '{word}'"),
            )
            .with_hint_opt(names::did_you_mean(word, ["pass", "block", "reject"])));
        }
        let expect = Located {
            value: super::rule::action(word),
            loc,
        };
        let log = self.eat_word("log").is_some();
        let because = match self.eat_word("because") {
            Some(because) => Some(self.drop_reason(because, expect.value)?),
            None => None,
        };
        let packet = self.packet()?;
        Ok(TestDecl {
            loc: self.since(start),
            expect,
            log,
            because,
            packet,
        })
    }

    /// The reason after `because` (a data plane drop reason), which only a `block` test
    /// may give.
    fn drop_reason(&mut self, because: Loc, expect: Action) -> PResult<Located<DropReason>> {
        if expect != Action::Block {
            return Err(
                Diagnostic::error(because, "'because' goes with 'block' only")
                    .with_hint("a pass is a pass; a reject is always the policy's"),
            );
        }
        let reasons = || DropReason::ALL.iter().map(|r| r.as_str());
        let (word, loc) = self.word("a drop reason, e.g. 'policy' or 'martian-destination'")?;
        match DropReason::from_name(word) {
            Some(reason) => Ok(Located { value: reason, loc }),
            None => Err(
                Diagnostic::error(loc, format!("unknown drop reason '{word}'"))
                    .with_hint_opt(names::did_you_mean(word, reasons())),
            ),
        }
    }

    /// `PROTO SRC[:PORT] -> DST[:PORT] [on IFACE] [type T [code C]] [options OPTS] [mac MAC]
    /// [broadcast]`
    pub(super) fn packet(&mut self) -> PResult<PacketSpec> {
        let start = self.peek().loc;
        let (text, loc) = self.word("a protocol")?;
        let protocol = match names::protocol_by_name(text) {
            Some(p) => p,
            None if text.starts_with(|c: char| c.is_ascii_digit()) => {
                words::number(text, loc, "protocol number", 255)? as u8
            }
            None => {
                return Err(Diagnostic::error(loc, format!("unknown protocol '{text}'"))
                    .with_hint_opt(names::did_you_mean(text, PROTOCOLS.iter().map(|(n, _)| *n))))
            }
        };
        let protocol = Located {
            value: protocol,
            loc,
        };
        let src = self.endpoint("the source")?;
        self.expect_kind(TokenKind::Arrow, "'->' between source and destination")?;
        let dst = self.endpoint("the destination")?;
        let mut on = None;
        let mut icmp = None;
        let mut options: Option<Vec<Located<u8>>> = None;
        let mut mac = None;
        let mut broadcast = None;
        while !self.at_end() && self.peek().kind != TokenKind::Eof {
            let (word, loc) = self.word("'on', 'type', 'options', 'mac' or 'broadcast'")?;
            match word {
                "on" if on.is_none() => on = Some(self.name("interface")?),
                "type" if icmp.is_none() => icmp = Some(self.icmp_item()?),
                "options" if options.is_none() => options = Some(self.ip_options()?),
                "mac" if mac.is_none() => {
                    let (text, loc) = self.word("the sender's MAC address")?;
                    mac = Some(Located {
                        value: words::mac(text, loc)?,
                        loc,
                    });
                }
                "broadcast" if broadcast.is_none() => broadcast = Some(loc),
                "on" | "type" | "options" | "mac" | "broadcast" => {
                    return Err(Diagnostic::error(loc, format!("'{word}' given twice")))
                }
                other => {
                    return Err(
                        Diagnostic::error(loc, format!("unexpected '{other}' in a packet"))
                            .with_hint(
                                names::did_you_mean(other, PACKET_CLAUSES)
                                    .unwrap_or_else(|| PACKET_SYNTAX.to_string()),
                            ),
                    )
                }
            }
        }
        Ok(PacketSpec {
            loc: self.since(start),
            protocol,
            src,
            dst,
            on,
            icmp,
            options: options.unwrap_or_default(),
            mac,
            broadcast,
        })
    }

    /// The IPv4 options after `options`: a name or a `{ }` list of names.
    fn ip_options(&mut self) -> PResult<Vec<Located<u8>>> {
        self.list(|p| {
            let (text, loc) = p.word("an IP option")?;
            match names::ip_option_by_name(text) {
                Some(kind) => Ok(Located { value: kind, loc }),
                None => Err(
                    Diagnostic::error(loc, format!("unknown IP option '{text}'")).with_hint_opt(
                        names::did_you_mean(text, names::IP_OPTIONS.iter().map(|(n, _)| *n)),
                    ),
                ),
            }
        })
    }

    /// `HOST[:PORT]` or `[IPV6]:PORT`, where HOST is an address, a client or `self`.
    fn endpoint(&mut self, what: &str) -> PResult<Endpoint> {
        let start = self.peek().loc;
        if let Some(open) = self.eat(TokenKind::LBracket) {
            let (text, loc) = self.word("an IPv6 address")?;
            let host = Located {
                value: Host::Addr(words::ip(text, loc)?),
                loc,
            };
            let close = self.expect_kind(TokenKind::RBracket, "']'")?;
            let next = self.peek();
            let mut port = None;
            if next.kind == TokenKind::Word && next.loc.start == close.loc.end {
                let text = self.text_of(next);
                if let Some(p) = text.strip_prefix(':') {
                    self.bump();
                    let loc = Loc::new(next.loc.start + 1, next.loc.end);
                    port = Some(Located {
                        value: words::port(p, loc)?,
                        loc,
                    });
                }
            }
            return Ok(Endpoint {
                loc: open.loc.to(self.since(start)),
                host,
                port,
            });
        }
        let (text, loc) = self.word(&format!("{what} (an address, a client or 'self')"))?;
        let colons = text.matches(':').count();
        let (host_text, port_text) = match text.rsplit_once(':') {
            Some((h, p)) if colons == 1 => (h, Some(p)),
            _ => (text, None),
        };
        let host_loc = Loc::new(loc.start, loc.start + host_text.len());
        let host = match host_text {
            "self" => Host::SelfRef,
            h if words::looks_like_address(h) => Host::Addr(words::ip(h, host_loc)?),
            h => Host::Client(words::name(h, host_loc, "client")?),
        };
        let port = match port_text {
            Some(p) => {
                let port_loc = Loc::new(host_loc.end + 1, loc.end);
                Some(Located {
                    value: words::port(p, port_loc)?,
                    loc: port_loc,
                })
            }
            None => None,
        };
        Ok(Endpoint {
            loc,
            host: Located {
                value: host,
                loc: host_loc,
            },
            port,
        })
    }
}
