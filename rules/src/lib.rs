//! Moat's ruleset language: parser, checker, shadowing analysis, self-tests and compiler
//! to the data plane's [`Policy`](dataplane::policy::Policy).
//!
//! **Owns**: the language (its syntax, names, checks and diagnostics), the lowering to the
//! data plane's policy model, the digest, and the command line. **Must not import** kernel
//! platform code (it runs on the host), and must not
//! decide anything the data plane decides: to know what the appliance does with a packet
//! (a `test` line, `explain`), it runs the data plane itself ([`dryrun`]: `dataplane`'s
//! `Appliance`, with the `testutil` feature to build the packets). It depends on
//! `dataplane` (with `codegen`), `smoltcp` for frames, `ipnetwork` and `sha2`.
//!
//! The pipeline ([`compile`]):
//!
//! 1. [`lexer`] and [`parser`]: text to a syntax tree ([`ast`]) with exact locations;
//! 2. [`check`]: names resolved, declarations validated, rules normalised into product
//!    sets of flow keys ([`space::KeySet`]), giving a [`checked::Checked`] ruleset;
//! 3. [`analysis`]: rules that can never match are errors, conflicting overlaps warnings;
//! 4. [`lower`]: the [`PolicyBuf`](dataplane::policy::PolicyBuf) the kernel embeds, with
//!    its [`digest`];
//! 5. [`selftest`]: every `test` line run through the data plane itself ([`dryrun`],
//!    [`cases`] for what DHCP learns at run time, [`outcome`] for the verdict in words).
//!
//! The `rules` binary is the command-line front end ([`cli`]); its `compile` command writes
//! the policy blob (`dataplane::policy::codegen::blob`) that `image build` embeds in the
//! kernel. The language itself is described in `rules/README.md`.

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
pub mod explain;
pub mod generate;
pub mod lexer;
pub mod lower;
pub mod names;
pub mod outcome;
pub mod parser;
pub mod qubes;
pub mod ranges;
pub mod selftest;
pub mod source;
pub mod space;

pub use compile::{compile, compile_file, compile_untested, CompileError, Compiled};
