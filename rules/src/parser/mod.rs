//! The parser: tokens to a [`Ruleset`] syntax tree.
//!
//! Each statement is parsed on its own; after a syntax error the parser reports it, skips
//! to the end of the statement and goes on, so one run reports every broken line.

mod decl;
mod packet;
mod rule;
mod words;

use crate::ast::{Located, Name, PacketSpec, Ruleset, Statement};
use crate::diag::{Diagnostic, Diagnostics};
use crate::lexer::{lex, Token, TokenKind};
use crate::names::{self, STATEMENTS};
use crate::source::{Loc, SourceFile};

pub use words::network;

/// A parse step's result: the value, or the diagnostic that stops the statement.
type PResult<T> = Result<T, Diagnostic>;

/// Parses a whole ruleset. The tree holds every statement that parsed; the diagnostics
/// hold one error per statement that did not.
pub fn parse(file: &SourceFile) -> (Ruleset, Diagnostics) {
    let (tokens, mut diags) = lex(file.text());
    let mut parser = Parser {
        text: file.text(),
        tokens,
        pos: 0,
    };
    let mut ruleset = Ruleset::default();
    loop {
        parser.skip_newlines();
        if parser.peek().kind == TokenKind::Eof {
            break;
        }
        match parser
            .statement()
            .and_then(|s| parser.expect_end().map(|()| s))
        {
            Ok(statement) => ruleset.statements.push(statement),
            Err(diagnostic) => {
                diags.push(diagnostic);
                parser.recover();
            }
        }
    }
    (ruleset, diags)
}

/// Parses a packet description (`tcp 10.0.0.2:4000 -> 1.1.1.1:443 on lan`), as given to
/// `explain`.
pub fn parse_packet(file: &SourceFile) -> Result<PacketSpec, Diagnostics> {
    let (tokens, mut diags) = lex(file.text());
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut parser = Parser {
        text: file.text(),
        tokens,
        pos: 0,
    };
    parser.skip_newlines();
    let result = parser.packet().and_then(|p| {
        parser.skip_newlines();
        parser
            .expect_kind(TokenKind::Eof, "the end of the packet description")
            .map(|_| p)
    });
    result.map_err(|d| {
        diags.push(d);
        diags
    })
}

/// Cursor over the tokens of one ruleset.
pub(crate) struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// The next token (the final `Eof` repeats forever).
    fn peek(&self) -> Token {
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    /// Consumes and returns the next token.
    fn bump(&mut self) -> Token {
        let token = self.peek();
        if token.kind != TokenKind::Eof {
            self.pos += 1;
        }
        token
    }

    /// The text of `token`.
    fn text_of(&self, token: Token) -> &'a str {
        self.text.get(token.loc.start..token.loc.end).unwrap_or("")
    }

    /// Whether the next token is the word `word`.
    fn at_word(&self, word: &str) -> bool {
        let token = self.peek();
        token.kind == TokenKind::Word && self.text_of(token) == word
    }

    /// Consumes the word `word` if it is next.
    fn eat_word(&mut self, word: &str) -> Option<Loc> {
        self.at_word(word).then(|| self.bump().loc)
    }

    /// Consumes a token of `kind` if it is next.
    fn eat(&mut self, kind: TokenKind) -> Option<Token> {
        (self.peek().kind == kind).then(|| self.bump())
    }

    /// Whether the statement ends here.
    fn at_end(&self) -> bool {
        matches!(self.peek().kind, TokenKind::Newline | TokenKind::Eof)
    }

    /// How the next token reads in an "expected ..., found ..." message.
    fn found(&self) -> String {
        let token = self.peek();
        match token.kind {
            TokenKind::Word => format!("'{}'", self.text_of(token)),
            kind => kind.describe().to_string(),
        }
    }

    /// An "expected WHAT" error at the next token.
    fn expected(&self, what: &str) -> Diagnostic {
        Diagnostic::error(
            self.peek().loc,
            format!("expected {what}, found {}", self.found()),
        )
    }

    /// Consumes a token of `kind`, or fails with "expected WHAT".
    fn expect_kind(&mut self, kind: TokenKind, what: &str) -> PResult<Token> {
        self.eat(kind).ok_or_else(|| self.expected(what))
    }

    /// Consumes the keyword `word`, or fails.
    fn expect_word(&mut self, word: &str) -> PResult<Loc> {
        self.eat_word(word)
            .ok_or_else(|| self.expected(&format!("'{word}'")))
    }

    /// Consumes any word, or fails with "expected WHAT".
    fn word(&mut self, what: &str) -> PResult<(&'a str, Loc)> {
        let token = self.expect_kind(TokenKind::Word, what)?;
        Ok((self.text_of(token), token.loc))
    }

    /// Consumes a name being used (of an interface, client or table).
    fn name(&mut self, what: &str) -> PResult<Name> {
        let (text, loc) = self.word(&format!("{what} name"))?;
        let value = words::name(text, loc, what)?;
        Ok(Located { value, loc })
    }

    /// Requires the end of the statement.
    fn expect_end(&mut self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(Diagnostic::error(
                self.peek().loc,
                format!("unexpected {} at the end of the statement", self.found()),
            ))
        }
    }

    /// Skips blank lines.
    fn skip_newlines(&mut self) {
        while self.eat(TokenKind::Newline).is_some() {}
    }

    /// Skips the rest of a broken statement, including any `{ }` it opened.
    fn recover(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek().kind {
                TokenKind::Eof => return,
                TokenKind::Newline if depth == 0 => return,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    /// The location from `start` to the end of the last consumed token.
    fn since(&self, start: Loc) -> Loc {
        let last = self.tokens[self.pos.saturating_sub(1)].loc;
        start.to(last)
    }

    /// Parses `{ ITEM [,] ITEM ... }` (newlines allowed inside) or a single `ITEM`.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> PResult<T>) -> PResult<Vec<T>> {
        if self.eat(TokenKind::LBrace).is_none() {
            return Ok(vec![item(self)?]);
        }
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            if self.eat(TokenKind::RBrace).is_some() {
                break;
            }
            items.push(item(self)?);
            self.skip_newlines();
            // Commas between items are optional, as in pf.
            let next_item = matches!(
                self.peek().kind,
                TokenKind::Word | TokenKind::Lt | TokenKind::RBrace
            );
            if self.eat(TokenKind::Comma).is_none() && !next_item {
                return Err(self.expected("',' or '}'"));
            }
        }
        if items.is_empty() {
            return Err(Diagnostic::error(
                self.tokens[self.pos - 1].loc,
                "empty list",
            ));
        }
        Ok(items)
    }

    /// Parses `ITEM, ITEM, ...` (commas required) or a `{ }` list.
    fn comma_list<T>(&mut self, mut item: impl FnMut(&mut Self) -> PResult<T>) -> PResult<Vec<T>> {
        if self.peek().kind == TokenKind::LBrace {
            return self.list(item);
        }
        let mut items = vec![item(self)?];
        while self.eat(TokenKind::Comma).is_some() {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// One statement, dispatched on its first word.
    fn statement(&mut self) -> PResult<Statement> {
        let (keyword, loc) = self.word("a statement")?;
        match keyword {
            "interface" => self.interface(loc).map(Statement::Interface),
            "client" => self.client(loc).map(Statement::Client),
            "table" => self.table(loc).map(Statement::Table),
            "nat" => self.nat(loc).map(Statement::Nat),
            "forward" => self.forward(loc).map(Statement::Forward),
            "dns" => self.dns(loc).map(Statement::Dns),
            "dhcp" => self.dhcp(loc).map(Statement::Dhcp),
            "pass" | "block" | "reject" => {
                let action = Located {
                    value: rule::action(keyword),
                    loc,
                };
                self.filter_rule(action).map(Statement::Filter)
            }
            "default" => self.default_decl(loc).map(Statement::Default),
            "test" => self.test(loc).map(Statement::Test),
            other => Err(
                Diagnostic::error(loc, format!("unknown statement '{other}'"))
                    .with_hint_opt(names::did_you_mean(other, STATEMENTS.iter().copied())),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
