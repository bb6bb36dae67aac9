//! The project's one test packet library: real packet bytes for the data plane's tests and
//! benchmarks, the end-to-end harness (`qemu-tests`) and the ruleset compiler's dry runs,
//! built and parsed with `smoltcp::wire` (never by hand).
//!
//! - [`datagram`]: IPv4 packets (and frames) carrying TCP, UDP or ICMP as owned values,
//!   emitted with correct checksums and parsed back with every checksum verified, and their
//!   field-by-field [`differences`](datagram::differences);
//! - [`link`]: a test host's link layer — its [`Station`](link::Station), the ARP and echo
//!   frames it sends, what it makes of a frame it receives;
//! - [`crafted`]: hostile packets — fragments at any offset, broken headers — for the
//!   robustness tests and the fuzz target;
//! - [`packets`]: short builders of the packets tests use most (a SYN, a datagram, an ICMP
//!   error...) on top of [`datagram`], and small edits (TTL, fragments, TCP flags);
//! - [`offload`]: packets as a NIC with checksum and segmentation offloads hands them over
//!   (partial checksums, TCP super-packets) and the metadata that comes with them.
//!
//! Compiled for the crate's own tests and with the `testutil` feature.

pub mod crafted;
pub mod datagram;
pub mod dhcp;
pub mod link;
pub mod offload;
pub mod packets;
pub mod packets6;
