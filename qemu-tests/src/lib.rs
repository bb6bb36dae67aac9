//! End-to-end harness for Moat: boots images in QEMU and talks to them like their users do.
//!
//! - [`vm::Vm`] starts an appliance from a [`vm::VmSpec`] (machine, boot path, NICs, kernel
//!   build), reads its serial console with timeouts ([`console::Console`]), presses its power
//!   button over QMP, and always kills QEMU and removes its sockets when dropped, printing the
//!   console for a failing test.
//! - [`segment_host::SegmentHost`] is a rootless host on one NIC: raw Ethernet frames over a
//!   unix datagram socket, built and parsed with `smoltcp::wire` ([`frames`]).
//! - [`test_host::TestHost`] is a real Linux host: a network namespace with a tap device
//!   (root only), for `ping` and friends.
//! - [`addressing`] is the one place the appliance's and the test hosts' addresses live.
//!
//! The QEMU command line itself comes from the `image` crate, the same code `image run` uses.

pub mod accel;
pub mod addressing;
pub mod boot_report;
pub mod console;
pub mod expect;
pub mod failure;
pub mod frames;
pub mod kernels;
pub mod leftovers;
pub mod notice;
pub mod qmp;
pub mod segment_host;
pub mod test_host;
pub mod vm;

pub use failure::{ensure, Failure, Outcome};
