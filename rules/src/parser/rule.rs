//! Filter rules and their parts: scopes, protocols, ports, ICMP types.

use dataplane::policy::Action;

use super::{words, PResult, Parser};
use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::TokenKind;
use crate::names::{self, PROTOCOLS, RULE_CLAUSES};
use crate::source::Loc;

/// The action named by `pass`, `block` or `reject` (anything else reads as `block`).
pub(super) fn action(word: &str) -> Action {
    match word {
        "pass" => Action::Pass,
        "reject" => Action::Reject,
        _ => Action::Block,
    }
}

/// Stores a clause that may be given once.
fn once<T>(slot: &mut Option<T>, value: T, what: &str, loc: Loc) -> PResult<()> {
    if slot.is_some() {
        return Err(Diagnostic::error(
            loc,
            format!("'{what}' given twice in one rule"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

impl Parser<'_> {
    /// The clauses of a filter rule after its action, in any order.
    pub(super) fn filter_rule(&mut self, action: Located<Action>) -> PResult<FilterRule> {
        let mut rule = FilterRule {
            loc: action.loc,
            action,
            log: None,
            from: None,
            to: None,
            protocols: None,
            src_ports: None,
            dst_ports: None,
            icmp: None,
            max_states: None,
            max_src_states: None,
            allow_opts: None,
            forwarded: None,
        };
        let mut after_from = false;
        while !self.at_end() {
            let token = self.peek();
            let word = if token.kind == TokenKind::Word {
                self.text_of(token)
            } else {
                ""
            };
            let just_from = word == "from";
            match word {
                "log" => once(&mut rule.log, self.bump().loc, "log", token.loc)?,
                "forwarded" => once(&mut rule.forwarded, self.bump().loc, "forwarded", token.loc)?,
                "allow-opts" => once(
                    &mut rule.allow_opts,
                    self.bump().loc,
                    "allow-opts",
                    token.loc,
                )?,
                "from" => {
                    self.bump();
                    let scope = self.scope()?;
                    once(&mut rule.from, scope, "from", token.loc)?;
                }
                "to" => {
                    self.bump();
                    let scope = self.scope()?;
                    once(&mut rule.to, scope, "to", token.loc)?;
                }
                "port" => {
                    self.bump();
                    let ports = self.ports(token.loc)?;
                    match after_from {
                        true => once(&mut rule.src_ports, ports, "from ... port", token.loc)?,
                        false => once(&mut rule.dst_ports, ports, "port", token.loc)?,
                    }
                }
                "type" => {
                    self.bump();
                    let icmp = self.icmp(token.loc)?;
                    once(&mut rule.icmp, icmp, "type", token.loc)?;
                }
                "code" => {
                    return Err(Diagnostic::error(token.loc, "an ICMP code needs a type")
                        .with_hint("write: icmp type unreachable code port-unreachable"))
                }
                "max-states" | "max-src-states" => {
                    self.bump();
                    let (text, loc) = self.word("a number of states")?;
                    let n = Located {
                        value: words::count(text, loc, word)?,
                        loc: token.loc.to(loc),
                    };
                    let slot = if word == "max-states" {
                        &mut rule.max_states
                    } else {
                        &mut rule.max_src_states
                    };
                    once(slot, n, word, token.loc)?;
                }
                _ if word == "proto"
                    || token.kind == TokenKind::LBrace
                    || names::protocol_by_name(word).is_some() =>
                {
                    let protocols = self.protocols()?;
                    once(&mut rule.protocols, protocols, "protocol", token.loc)?;
                }
                _ => {
                    let candidates = RULE_CLAUSES
                        .iter()
                        .chain(PROTOCOLS.iter().map(|(n, _)| n))
                        .copied();
                    let hint = names::did_you_mean(word, candidates);
                    return Err(Diagnostic::error(token.loc, format!("unexpected {} in a rule", self.found()))
                        .with_hint(hint.unwrap_or_else(|| {
                            "a rule reads: ACTION [log] [from SCOPE [port P]] [to SCOPE] [PROTO [port P] [type T]]".into()
                        })));
                }
            }
            after_from = just_from;
        }
        rule.loc = self.since(rule.loc);
        Ok(rule)
    }

    /// `!ITEM`, `ITEM` or `{ ITEM, ... }`.
    pub(super) fn scope(&mut self) -> PResult<Scope> {
        let start = self.peek().loc;
        let negated = self.eat(TokenKind::Bang).is_some();
        if negated && self.peek().kind == TokenKind::LBrace {
            return Err(
                Diagnostic::error(self.peek().loc, "a list cannot be negated")
                    .with_hint("put the addresses in a table and write !<table>"),
            );
        }
        let items = self.list(|p| {
            if p.peek().kind == TokenKind::Bang {
                return Err(
                    Diagnostic::error(p.peek().loc, "negation inside a list is ambiguous")
                        .with_hint("put the addresses in a table and write !<table>"),
                );
            }
            p.scope_item()
        })?;
        Ok(Scope {
            loc: self.since(start),
            negated,
            items,
        })
    }

    /// `any`, `self`, `<table>`, an address or CIDR, or an interface or client name.
    fn scope_item(&mut self) -> PResult<ScopeItem> {
        if self.eat(TokenKind::Lt).is_some() {
            let name = self.name("table")?;
            self.expect_kind(TokenKind::Gt, "'>' after the table name")?;
            return Ok(ScopeItem::Table(name));
        }
        let (text, loc) =
            self.word("'any', 'self', an interface, a client, <table> or an address")?;
        Ok(match text {
            "any" => ScopeItem::Any(loc),
            "self" => ScopeItem::SelfRef(loc),
            _ if words::looks_like_address(text) => ScopeItem::Net(Located {
                value: words::network(text, loc)?,
                loc,
            }),
            _ => ScopeItem::Name(Located {
                value: words::name(text, loc, "interface or client")?,
                loc,
            }),
        })
    }

    /// `proto P`, `proto { P, ... }`, `P` or `{ P, ... }` with P a name or (after `proto`) a
    /// number.
    pub(super) fn protocols(&mut self) -> PResult<ProtoSpec> {
        let start = self.peek().loc;
        let explicit = self.eat_word("proto").is_some();
        let items = self.list(|p| {
            let (text, loc) = p.word("a protocol")?;
            if text.starts_with(|c: char| c.is_ascii_digit()) {
                if !explicit {
                    return Err(Diagnostic::error(
                        loc,
                        format!("write protocol numbers as 'proto {text}'"),
                    ));
                }
                let n = words::number(text, loc, "protocol number", 255)? as u8;
                return Ok(Located { value: n, loc });
            }
            match names::protocol_by_name(text) {
                Some(n) => Ok(Located { value: n, loc }),
                None => Err(Diagnostic::error(loc, format!("unknown protocol '{text}'"))
                    .with_hint(
                    names::did_you_mean(text, PROTOCOLS.iter().map(|(n, _)| *n)).unwrap_or_else(
                        || {
                            "name a protocol (tcp, udp, icmp, icmp6, ...) or write 'proto NUMBER'"
                                .into()
                        },
                    ),
                )),
            }
        })?;
        Ok(ProtoSpec {
            loc: self.since(start),
            items,
        })
    }

    /// The ports after `port`: one port or range, or a `{ }` list of them.
    fn ports(&mut self, start: Loc) -> PResult<PortSpec> {
        let items = self.list(|p| {
            let (text, loc) = p.word("a port or port range")?;
            Ok(Located {
                value: words::port_range(text, loc)?,
                loc,
            })
        })?;
        Ok(PortSpec {
            loc: self.since(start),
            items,
        })
    }

    /// The ICMP types after `type`: `T [code C]` or a `{ }` list of them.
    fn icmp(&mut self, start: Loc) -> PResult<IcmpSpec> {
        let items = self.list(Self::icmp_item)?;
        Ok(IcmpSpec {
            loc: self.since(start),
            items,
        })
    }

    /// `T [code C]`, each a name or a number.
    pub(super) fn icmp_item(&mut self) -> PResult<IcmpItem> {
        let ty = self.icmp_word("an ICMP type")?;
        let code = match self.eat_word("code") {
            Some(_) => Some(self.icmp_word("an ICMP code")?),
            None => None,
        };
        Ok(IcmpItem { ty, code })
    }

    fn icmp_word(&mut self, what: &str) -> PResult<Located<IcmpWord>> {
        let (text, loc) = self.word(what)?;
        let value = if text.starts_with(|c: char| c.is_ascii_digit()) {
            IcmpWord::Number(words::number(text, loc, what, 255)? as u8)
        } else {
            IcmpWord::Name(text.to_string())
        };
        Ok(Located { value, loc })
    }
}
