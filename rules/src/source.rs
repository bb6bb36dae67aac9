//! Ruleset source text and positions inside it.

use dataplane::policy::SourcePos;

/// A byte range of the source text (`start..end`), the unit every token, syntax node and
/// diagnostic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Loc {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Loc {
    /// The range `start..end`.
    pub fn new(start: usize, end: usize) -> Loc {
        Loc { start, end }
    }

    /// The smallest range covering both `self` and `other`.
    pub fn to(self, other: Loc) -> Loc {
        Loc {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A named ruleset source with an index of its line starts.
#[derive(Clone, Debug)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps `text`, read from the file called `name` (used in diagnostics).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The file name diagnostics are reported against.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text under `loc` (empty if `loc` is out of range or splits a character).
    pub fn slice(&self, loc: Loc) -> &str {
        self.text.get(loc.start..loc.end).unwrap_or("")
    }

    /// 1-based line and column (in characters) of byte offset `offset`.
    pub fn position(&self, offset: usize) -> SourcePos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        SourcePos {
            line: line as u32 + 1,
            column: column as u32 + 1,
        }
    }

    /// The text of 1-based line `line`, without its line ending.
    pub fn line_text(&self, line: u32) -> &str {
        let index = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(index) else {
            return "";
        };
        let end = self
            .line_starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.text.len());
        let line = self.text.get(start..end).unwrap_or("");
        line.trim_end_matches(['\n', '\r'])
    }
}

/// Formats a position the way diagnostics cite rules: `LINE:COL`.
pub fn pos_str(pos: SourcePos) -> String {
    format!("{}:{}", pos.line, pos.column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let file = SourceFile::new("t.rules", "ab\n  é x\n");
        assert_eq!(file.position(0), SourcePos { line: 1, column: 1 });
        assert_eq!(file.position(3), SourcePos { line: 2, column: 1 });
        // 'x' (byte 8) follows two spaces, a two-byte 'é' and a space: character column 5.
        assert_eq!(file.position(8), SourcePos { line: 2, column: 5 });
        assert_eq!(file.line_text(2), "  é x");
        assert_eq!(file.line_text(9), "");
    }
}
