//! Matching NAT rules' range lists (spans into the policy's pools).

use smoltcp::wire::IpAddress;

use crate::policy::{ip_to_flow_addr, Policy, Span};

/// Whether NIC `nic` lies in the byte ranges `span`.
pub(crate) fn nic_in(policy: &Policy, span: Span, nic: u8) -> bool {
    span.of(policy.byte_ranges)
        .iter()
        .any(|r| r.first <= nic && nic <= r.last)
}

/// Whether `addr` lies in the address ranges `span`.
pub(crate) fn addr_in(policy: &Policy, span: Span, addr: IpAddress) -> bool {
    let addr = ip_to_flow_addr(addr);
    span.of(policy.addr_ranges)
        .iter()
        .any(|r| r.first <= addr && addr <= r.last)
}
