//! Moat's ruleset language: parser, checker, shadowing analysis, self-tests and compiler
//! to the data plane's [`Policy`](dataplane::policy::Policy).
//!
//! The pipeline ([`compile`]):
//!
//! 1. [`lexer`] and [`parser`]: text to a syntax tree ([`ast`]) with exact locations;
//! 2. [`check`]: names resolved, declarations validated, rules normalised into product
//!    sets of flow keys ([`space::KeySet`]), giving a [`checked::Checked`] ruleset;
//! 3. [`analysis`]: rules that can never match are errors, conflicting overlaps warnings;
//! 4. [`lower`]: the [`PolicyBuf`](dataplane::policy::PolicyBuf) the kernel embeds, with
//!    its [`digest`];
//! 5. [`selftest`]: every `test` line decided by the data plane's own matcher.
//!
//! [`kernel_build::compile_for_kernel`] is what the kernel's build script calls; the
//! `rules` binary is the command-line front end ([`cli`]). The language itself is
//! described in `rules/README.md`.

pub mod analysis;
pub mod ast;
pub mod cases;
pub mod check;
pub mod checked;
pub mod cli;
pub mod compile;
pub mod concrete;
pub mod describe;
pub mod diag;
pub mod digest;
pub mod dryrun;
pub mod emit;
pub mod explain;
pub mod generate;
pub mod kernel_build;
pub mod lexer;
pub mod lower;
pub mod names;
pub mod outcome;
pub mod parser;
pub mod ranges;
pub mod selftest;
pub mod source;
pub mod space;

pub use compile::{compile, compile_file, compile_untested, CompileError, Compiled};
pub use kernel_build::{compile_for_kernel, CompileSummary};
