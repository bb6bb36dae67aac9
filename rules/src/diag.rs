//! Diagnostics: errors and warnings with a position, rendered like a compiler's.
//!
//! ```text
//! office.rules:12:11: error: unknown client or interface 'wrok'
//!    12 | pass from wrok to any tcp port 443
//!       |           ^^^^
//!       = hint: did you mean 'work'?
//! ```

use std::fmt::Write as _;

use crate::source::{Loc, SourceFile};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The ruleset is rejected.
    Error,
    /// The ruleset compiles, but something is probably not what the author meant.
    Warning,
}

/// One message about the ruleset, anchored at a place in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the problem is (`None` for problems of the whole file).
    pub loc: Option<Loc>,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, if we can tell.
    pub hint: Option<String>,
    /// Other places that explain the problem (an earlier declaration, a shadowing rule).
    pub notes: Vec<(Loc, String)>,
}

impl Diagnostic {
    /// An error at `loc`.
    pub fn error(loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            loc: Some(loc),
            message: message.into(),
            hint: None,
            notes: Vec::new(),
        }
    }

    /// A warning at `loc`.
    pub fn warning(loc: Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(loc, message)
        }
    }

    /// An error about the whole file.
    pub fn file_error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            loc: None,
            ..Diagnostic::error(Loc::default(), message)
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint if there is one.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Diagnostic {
        self.hint = hint;
        self
    }

    /// Adds a note pointing at another place.
    pub fn with_note(mut self, loc: Loc, note: impl Into<String>) -> Diagnostic {
        self.notes.push((loc, note.into()));
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic against the source it is about.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = String::new();
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.loc {
            Some(loc) => render_at(&mut out, file, loc, label, &self.message),
            None => {
                let _ = writeln!(out, "{}: {label}: {}", file.name(), self.message);
            }
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{:GUTTER$} = hint: {hint}", "");
        }
        for (loc, note) in &self.notes {
            render_at(&mut out, file, *loc, "note", note);
        }
        out
    }
}

/// Width of the line-number gutter: wide enough for any line we print.
const GUTTER: usize = 5;

/// `FILE:LINE:COL: LABEL: MESSAGE`, the source line, and carets under `loc`.
fn render_at(out: &mut String, file: &SourceFile, loc: Loc, label: &str, message: &str) {
    let pos = file.position(loc.start);
    let _ = writeln!(
        out,
        "{}:{}:{}: {label}: {message}",
        file.name(),
        pos.line,
        pos.column
    );
    let line = file.line_text(pos.line);
    let _ = writeln!(out, "{:>GUTTER$} | {line}", pos.line);
    // Pad with the line's own whitespace so that tabs line up.
    let pad: String = line
        .chars()
        .take(pos.column as usize - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let width = file
        .slice(loc)
        .lines()
        .next()
        .map_or(0, |s| s.chars().count())
        .max(1);
    let width = width.min(
        line.chars()
            .count()
            .saturating_sub(pos.column as usize - 1)
            .max(1),
    );
    let _ = writeln!(out, "{:>GUTTER$} | {pad}{}", "", "^".repeat(width));
}

/// The diagnostics of one compilation, in the order they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No diagnostics yet.
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    /// Records a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Records all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Renders every diagnostic, sorted by position (file-wide ones first), followed by a
    /// summary line when there are errors.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut sorted: Vec<&Diagnostic> = self.items.iter().collect();
        sorted.sort_by_key(|d| d.loc.map(|l| l.start));
        let mut out: String = sorted.iter().map(|d| d.render(file)).collect();
        let errors = self.errors().count();
        if errors > 0 {
            let warnings = self.warnings().count();
            let _ = writeln!(
                out,
                "{}: {errors} error{}{}",
                file.name(),
                plural(errors),
                if warnings > 0 {
                    format!(", {warnings} warning{}", plural(warnings))
                } else {
                    String::new()
                }
            );
        }
        out
    }
}

/// `"s"` unless `n` is 1.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_renders_file_line_column_source_caret_and_hint() {
        let file = SourceFile::new(
            "office.rules",
            "client work 10.0.0.2 on lan\npass from wrok to any\n",
        );
        let start = file.text().find("wrok").unwrap();
        let d = Diagnostic::error(
            Loc::new(start, start + 4),
            "unknown client or interface 'wrok'",
        )
        .with_hint("did you mean 'work'?");
        let text = d.render(&file);
        assert_eq!(
            text,
            "office.rules:2:11: error: unknown client or interface 'wrok'\n\
             \x20   2 | pass from wrok to any\n\
             \x20     |           ^^^^\n\
             \x20     = hint: did you mean 'work'?\n"
        );
    }

    #[test]
    fn caret_padding_keeps_tabs_so_it_lines_up() {
        let file = SourceFile::new("t.rules", "\tpass frm lan\n");
        let start = file.text().find("frm").unwrap();
        let text = Diagnostic::error(Loc::new(start, start + 3), "x").render(&file);
        assert!(text.contains("      | \t     ^^^"), "{text}");
    }
}
