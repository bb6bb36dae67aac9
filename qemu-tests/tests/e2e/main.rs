//! Moat end to end: real images booted in QEMU, under the accelerator the suite measured
//! (see `image::accel`; `MOAT_ACCEL=kvm|tcg` forces), talked to with real frames.
//!
//! One test binary, so that the kernel is built and the accelerator calibrated once.

mod boot_paths;
mod clients;
mod clients_load;
mod command_line;
mod dhcp_clients;
mod dhcp_uplink;
mod entropy;
mod faults;
mod forwarding;
mod forwarding_drops;
mod hostile;
mod images;
mod interrupts;
mod ipv6;
mod ipv6_routed;
mod ipv6_router;
mod kvm;
mod libvirt;
mod observability;
mod offloads;
mod power;
mod qubes;
mod run_client;
mod soak;
mod stalled_client;
mod stalled_console;
mod tap_clients;
mod watchdog;
