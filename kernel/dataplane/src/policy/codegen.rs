//! A compiled policy as a binary blob, for embedding in the kernel image.
//!
//! - [`blob`]: the blob's format. [`blob::decode`] (always built) reads and checks a blob at
//!   boot; `blob::encode` (feature `codegen`, host side) writes one for the image tool.
//! - [`flat`]: the flat word form of the policy's records, which the blob and the ruleset
//!   compiler's digest share, and [`flat::walk`], which visits a policy in that form in one
//!   canonical order.

pub mod blob;
pub mod flat;
