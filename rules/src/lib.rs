//! Moat ruleset compiler (placeholder).
