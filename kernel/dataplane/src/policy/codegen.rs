//! A compiled policy as Rust `static` data, for embedding in the kernel image.
//!
//! - [`emit_policy`] (feature `codegen`, host side): writes a `pub static` [`Policy`]
//!   with every pool and the matcher's index as static arrays, so the kernel needs no heap
//!   and does no work at boot to load it.
//! - [`flat`] (always built): the flat integer form of the large pools and the `const fn`s
//!   the emitted code calls to rebuild them at compile time. Flat integer arrays keep rustc
//!   fast on big policies; a struct literal per rule is several times slower to compile.
//!
//! [`Policy`]: super::Policy

#[cfg(feature = "codegen")]
mod emit;
pub mod flat;

#[cfg(feature = "codegen")]
pub use emit::emit_policy;
