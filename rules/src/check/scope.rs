//! `from` / `to` scopes: interfaces, clients, tables, addresses, `any`, `self`, `!`.

use dataplane::policy::OUT_SELF;

use super::decls::net_range;
use super::{Checker, Entity};
use crate::ast::{Scope, ScopeItem};
use crate::diag::Diagnostic;
use crate::ranges::RangeSet;

/// Which side of a rule a scope is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// `from`: the arrival interface and the source address.
    From,
    /// `to`: the egress (or the appliance) and the destination address.
    To,
}

/// One product piece of a scope: interfaces (NIC numbers, or [`OUT_SELF`]) × addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ScopePart {
    /// Arrival or egress NICs.
    pub nics: RangeSet,
    /// Source or destination addresses.
    pub addrs: RangeSet,
}

/// The largest NIC-field value (the field is a byte).
const NIC_MAX: u128 = u8::MAX as u128;

fn all_nics() -> RangeSet {
    RangeSet::range(0, NIC_MAX)
}

fn all_addrs() -> RangeSet {
    RangeSet::range(0, u128::MAX)
}

impl Checker<'_> {
    /// Resolves a scope to a union of [`ScopePart`]s (empty when it matches nothing).
    pub(super) fn scope(
        &mut self,
        scope: &Scope,
        side: Side,
    ) -> Result<Vec<ScopePart>, Diagnostic> {
        let mut parts: Vec<ScopePart> = Vec::new();
        for item in &scope.items {
            let part = self.scope_item(item, side)?;
            // Items on the same interfaces merge into one part.
            match parts.iter_mut().find(|p| p.nics == part.nics) {
                Some(p) => p.addrs = p.addrs.union(&part.addrs),
                None => parts.push(part),
            }
        }
        if !scope.negated {
            return Ok(parts);
        }
        // The parser allows `!` on a single item only: complement one product set.
        let Some(ScopePart { nics, addrs }) = parts.pop() else {
            return Ok(Vec::new());
        };
        let complement = [
            ScopePart {
                nics: nics.complement(NIC_MAX),
                addrs: all_addrs(),
            },
            ScopePart {
                nics,
                addrs: addrs.complement(u128::MAX),
            },
        ];
        Ok(complement
            .into_iter()
            .filter(|p| !p.nics.is_empty() && !p.addrs.is_empty())
            .collect())
    }

    fn scope_item(&mut self, item: &ScopeItem, side: Side) -> Result<ScopePart, Diagnostic> {
        Ok(match item {
            ScopeItem::Any(_) => ScopePart {
                nics: all_nics(),
                addrs: all_addrs(),
            },
            ScopeItem::SelfRef(loc) => {
                if side == Side::From {
                    return Err(Diagnostic::error(*loc, "'from self' matches nothing: the appliance's own traffic is not filtered")
                        .with_hint("'self' is a destination: 'to self' matches packets addressed to the appliance"));
                }
                ScopePart {
                    nics: RangeSet::single(OUT_SELF.into()),
                    addrs: all_addrs(),
                }
            }
            ScopeItem::Name(name) => match self.entity_named(&name.value, name.loc)? {
                Entity::Interface(i) => ScopePart {
                    nics: RangeSet::single(self.out.interfaces[i].nic.into()),
                    addrs: all_addrs(),
                },
                Entity::Client(c) => {
                    let client = &self.out.clients[c];
                    ScopePart {
                        nics: RangeSet::single(client.nic.into()),
                        addrs: client.addresses(),
                    }
                }
            },
            ScopeItem::Table(name) => ScopePart {
                nics: all_nics(),
                addrs: self.table_named(&name.value, name.loc)?,
            },
            ScopeItem::Net(net) => {
                let (first, last) = net_range(&net.value);
                ScopePart {
                    nics: all_nics(),
                    addrs: RangeSet::range(first, last),
                }
            }
        })
    }
}
