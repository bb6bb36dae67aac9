//! The lexer: source text to tokens with exact byte ranges.
//!
//! The language is line-oriented: a newline ends a statement, except inside `{ }` (the
//! parser skips newlines there) or after a `\` at the end of a line. `#` starts a comment
//! that runs to the end of the line. Everything else is punctuation or a *word*: a run of
//! letters, digits and `_ . : / -`, which the parser reads as a keyword, a name, a number,
//! a port range or an address, depending on where it stands.

use crate::diag::{Diagnostic, Diagnostics};
use crate::source::Loc;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A keyword, name, number, address or range (see the module doc).
    Word,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `!`
    Bang,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `->`
    Arrow,
    /// End of a line (end of a statement outside braces).
    Newline,
    /// End of the input.
    Eof,
}

impl TokenKind {
    /// How the token is written, for "expected ..." messages.
    pub fn describe(self) -> &'static str {
        match self {
            TokenKind::Word => "a word",
            TokenKind::LBrace => "'{'",
            TokenKind::RBrace => "'}'",
            TokenKind::Comma => "','",
            TokenKind::Bang => "'!'",
            TokenKind::Lt => "'<'",
            TokenKind::Gt => "'>'",
            TokenKind::LBracket => "'['",
            TokenKind::RBracket => "']'",
            TokenKind::Arrow => "'->'",
            TokenKind::Newline => "the end of the line",
            TokenKind::Eof => "the end of the file",
        }
    }
}

/// One token and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is.
    pub loc: Loc,
}

/// Whether `c` may appear in a word.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// Splits `text` into tokens. The result always ends with [`TokenKind::Eof`]; characters
/// that cannot start a token are reported and skipped.
pub fn lex(text: &str) -> (Vec<Token>, Diagnostics) {
    let mut tokens = Vec::new();
    let mut diags = Diagnostics::new();
    let bytes = text.as_bytes();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let single = |kind| Token {
            kind,
            loc: Loc::new(i, i + c.len_utf8()),
        };
        match c {
            ' ' | '\t' | '\r' => {}
            '\n' => tokens.push(single(TokenKind::Newline)),
            '#' => while chars.next_if(|&(_, c)| c != '\n').is_some() {},
            '\\' => {
                // A line continuation: `\` then the end of the line.
                let rest = &text[i + 1..];
                let skip = if rest.starts_with("\r\n") {
                    2
                } else if rest.starts_with('\n') {
                    1
                } else {
                    0
                };
                if skip == 0 {
                    diags.push(
                        Diagnostic::error(single(TokenKind::Word).loc, "'\\' must end the line")
                            .with_hint(
                            "a '\\' at the end of a line continues the statement on the next line",
                        ),
                    );
                }
                for _ in 0..skip {
                    chars.next();
                }
            }
            '{' => tokens.push(single(TokenKind::LBrace)),
            '}' => tokens.push(single(TokenKind::RBrace)),
            ',' => tokens.push(single(TokenKind::Comma)),
            '!' => tokens.push(single(TokenKind::Bang)),
            '<' => tokens.push(single(TokenKind::Lt)),
            '>' => tokens.push(single(TokenKind::Gt)),
            '[' => tokens.push(single(TokenKind::LBracket)),
            ']' => tokens.push(single(TokenKind::RBracket)),
            '-' if bytes.get(i + 1) == Some(&b'>') => {
                chars.next();
                tokens.push(Token {
                    kind: TokenKind::Arrow,
                    loc: Loc::new(i, i + 2),
                });
            }
            c if is_word_char(c) => {
                let mut end = i + 1;
                while let Some(&(j, d)) = chars.peek() {
                    let arrow = d == '-' && bytes.get(j + 1) == Some(&b'>');
                    if !is_word_char(d) || arrow {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                tokens.push(Token {
                    kind: TokenKind::Word,
                    loc: Loc::new(i, end),
                });
            }
            other => diags.push(
                Diagnostic::error(
                    single(TokenKind::Word).loc,
                    format!("unexpected character '{}'", other.escape_default()),
                )
                .with_hint(
                    "words are made of letters, digits and '_ . : / -'; comments start with '#'",
                ),
            ),
        }
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        loc: Loc::new(text.len(), text.len()),
    });
    (tokens, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_text(text: &str) -> Vec<(TokenKind, &str)> {
        let (tokens, diags) = lex(text);
        assert!(diags.is_empty(), "{diags:?}");
        tokens
            .iter()
            .map(|t| (t.kind, &text[t.loc.start..t.loc.end]))
            .collect()
    }

    #[test]
    fn words_keep_addresses_ports_and_ranges_whole() {
        use TokenKind::*;
        assert_eq!(
            kinds_and_text("test pass tcp 10.0.0.1:4000 -> [2001:db8::1]:443 # done\n"),
            vec![
                (Word, "test"),
                (Word, "pass"),
                (Word, "tcp"),
                (Word, "10.0.0.1:4000"),
                (Arrow, "->"),
                (LBracket, "["),
                (Word, "2001:db8::1"),
                (RBracket, "]"),
                (Word, ":443"),
                (Newline, "\n"),
                (Eof, ""),
            ]
        );
    }

    #[test]
    fn arrow_splits_words_written_without_spaces() {
        use TokenKind::*;
        assert_eq!(
            kinds_and_text("a->b 1024-65535"),
            vec![
                (Word, "a"),
                (Arrow, "->"),
                (Word, "b"),
                (Word, "1024-65535"),
                (Eof, "")
            ]
        );
    }

    #[test]
    fn backslash_newline_continues_the_statement() {
        use TokenKind::*;
        assert_eq!(
            kinds_and_text("pass \\\n log"),
            vec![(Word, "pass"), (Word, "log"), (Eof, "")]
        );
    }

    #[test]
    fn unexpected_characters_are_reported_with_their_position() {
        let (tokens, diags) = lex("pass ; log");
        assert_eq!(diags.len(), 1);
        let d = diags.iter().next().unwrap();
        assert_eq!(d.loc, Some(Loc::new(5, 6)));
        assert!(d.message.contains("unexpected character ';'"));
        assert_eq!(tokens.len(), 3);
    }
}
