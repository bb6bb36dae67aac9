//! The checker: resolves names, validates declarations and normalises rules.
//!
//! It reports every problem it can find in one pass: a broken statement is reported and
//! left out, and the rest of the ruleset is still checked.

mod addressing6;
mod decls;
mod filter;
mod scope;
mod translate;

use std::collections::BTreeMap;

use dataplane::policy::{DefaultRule, SourcePos};

use crate::ast::{Ruleset, Statement};
use crate::checked::{Checked, ClientDef, InterfaceDef};
use crate::diag::{Diagnostic, Diagnostics};
use crate::names;
use crate::ranges::RangeSet;
use crate::source::{Loc, SourceFile};

/// Checks a parsed ruleset. The result holds every statement that checked; the
/// diagnostics say what was wrong with the others (and warn about the rest).
pub fn check(file: &SourceFile, ruleset: &Ruleset) -> (Checked, Diagnostics) {
    let mut checker = Checker {
        file,
        diags: Diagnostics::new(),
        names: BTreeMap::new(),
        tables: Vec::new(),
        out: Checked {
            interfaces: Vec::new(),
            clients: Vec::new(),
            rules: Vec::new(),
            default: DefaultRule {
                pos: SourcePos::default(),
                reject: false,
                log: false,
            },
            masquerades: Vec::new(),
            forwards: Vec::new(),
            dns: Vec::new(),
            tests: Vec::new(),
        },
    };
    checker.declarations(ruleset);
    let mut default_loc: Option<Loc> = None;
    for statement in &ruleset.statements {
        match statement {
            Statement::Interface(_) | Statement::Client(_) | Statement::Table(_) => {}
            Statement::Nat(nat) => checker.nat(nat),
            Statement::Forward(forward) => checker.forward(forward),
            Statement::Dns(dns) => checker.dns(dns),
            Statement::Filter(rule) => checker.filter(rule),
            Statement::Default(decl) => {
                if let Some(first) = default_loc {
                    checker.diags.push(
                        Diagnostic::error(decl.loc, "the default is given twice")
                            .with_note(first, "the first 'default' is here"),
                    );
                    continue;
                }
                default_loc = Some(decl.loc);
                checker.out.default = DefaultRule {
                    pos: checker.pos(decl.loc),
                    reject: decl.reject,
                    log: decl.log,
                };
            }
            Statement::Test(test) => checker.out.tests.push(test.clone()),
        }
    }
    checker.unused_tables();
    (checker.out, checker.diags)
}

/// What a name in a scope refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entity {
    /// `interfaces[i]`
    Interface(usize),
    /// `clients[i]`
    Client(usize),
}

/// A declared table: its addresses and whether any statement used it.
struct TableDef {
    name: String,
    name_loc: Loc,
    addrs: RangeSet,
    used: bool,
}

/// The checker's state while it walks the statements.
struct Checker<'a> {
    file: &'a SourceFile,
    diags: Diagnostics,
    /// Interface and client names (one namespace) and where each was declared.
    names: BTreeMap<String, (Entity, Loc)>,
    tables: Vec<TableDef>,
    out: Checked,
}

impl Checker<'_> {
    /// The source position of `loc`.
    fn pos(&self, loc: Loc) -> SourcePos {
        self.file.position(loc.start)
    }

    /// Records an error.
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// The interface called `name`, or an error naming the closest one.
    fn interface_named(&self, name: &str, loc: Loc) -> Result<&InterfaceDef, Diagnostic> {
        if let Some(i) = self.out.interfaces.iter().find(|i| i.name == name) {
            return Ok(i);
        }
        let message = match self.names.get(name) {
            Some((Entity::Client(_), _)) => format!("'{name}' is a client, not an interface"),
            _ => format!("unknown interface '{name}'"),
        };
        let candidates = self.out.interfaces.iter().map(|i| i.name.as_str());
        Err(Diagnostic::error(loc, message).with_hint_opt(names::did_you_mean(name, candidates)))
    }

    /// The client called `name`, or an error naming the closest one.
    fn client_named(&self, name: &str, loc: Loc) -> Result<&ClientDef, Diagnostic> {
        if let Some(c) = self.out.clients.iter().find(|c| c.name == name) {
            return Ok(c);
        }
        let message = match self.names.get(name) {
            Some((Entity::Interface(_), _)) => format!("'{name}' is an interface, not a client"),
            _ => format!("unknown client '{name}'"),
        };
        let candidates = self.out.clients.iter().map(|c| c.name.as_str());
        Err(Diagnostic::error(loc, message).with_hint_opt(names::did_you_mean(name, candidates)))
    }

    /// The interface or client called `name`.
    fn entity_named(&self, name: &str, loc: Loc) -> Result<Entity, Diagnostic> {
        if let Some(&(entity, _)) = self.names.get(name) {
            return Ok(entity);
        }
        let hint = names::did_you_mean(name, self.names.keys().map(String::as_str));
        let hint = hint.or_else(|| {
            self.tables
                .iter()
                .any(|t| t.name == name)
                .then(|| format!("'{name}' is a table: write <{name}>"))
        });
        Err(
            Diagnostic::error(loc, format!("unknown interface or client '{name}'"))
                .with_hint_opt(hint),
        )
    }

    /// The addresses of table `name` (marking it used), or an error naming the closest one.
    fn table_named(&mut self, name: &str, loc: Loc) -> Result<RangeSet, Diagnostic> {
        if let Some(t) = self.tables.iter_mut().find(|t| t.name == name) {
            t.used = true;
            return Ok(t.addrs.clone());
        }
        let hint = names::did_you_mean(name, self.tables.iter().map(|t| t.name.as_str()));
        Err(Diagnostic::error(loc, format!("unknown table '{name}'")).with_hint_opt(hint))
    }

    /// Warns about tables no statement uses.
    fn unused_tables(&mut self) {
        let unused: Vec<Diagnostic> = self
            .tables
            .iter()
            .filter(|t| !t.used)
            .map(|t| Diagnostic::warning(t.name_loc, format!("table '{}' is never used", t.name)))
            .collect();
        for d in unused {
            self.diags.push(d);
        }
    }
}

#[cfg(test)]
mod tests;
