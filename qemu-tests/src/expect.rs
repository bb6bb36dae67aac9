//! Exact expectations about the appliance's answers on a NIC, shared by tests and benches.

use std::time::Duration;

use smoltcp::wire::{ArpOperation, ArpRepr};

use crate::addressing::appliance_address;
use crate::boot_report::BootReport;
use crate::segment_host::{appliance_station, SegmentHost};
use crate::vm::Vm;
use crate::{ensure, Failure, Outcome};
use dataplane::testutil::link::{Echo, Station};

/// How long the appliance may take to answer one ARP request or echo request.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The appliance as the host on `nic<index>` should see it: the MAC the kernel reported for
/// that NIC, and the planned address.
pub fn appliance_on(report: &BootReport, index: usize) -> Outcome<Station> {
    let nic = report
        .nics
        .get(index)
        .ok_or_else(|| Failure::new(format!("the kernel reported no nic{index}")))?;
    Ok(appliance_station(
        nic.mac,
        appliance_address(index).address(),
    ))
}

/// The appliance answers an ARP request for its address on `nic<index>` with a reply that
/// names its own MAC, addressed back to the asking host.
pub fn answers_arp(host: &SegmentHost, appliance: Station, timeout: Duration) -> Outcome {
    let answer = host.resolve(appliance.ip, timeout)?;
    let nic = host.nic;
    ensure(answer.ethernet.src_addr == appliance.mac, || {
        format!(
            "nic{nic}: ARP reply sent from {}, expected the NIC's MAC {}",
            answer.ethernet.src_addr, appliance.mac
        )
    })?;
    ensure(answer.ethernet.dst_addr == host.station.mac, || {
        format!(
            "nic{nic}: ARP reply sent to {}, expected the asking host {}",
            answer.ethernet.dst_addr, host.station.mac
        )
    })?;
    let expected = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: appliance.mac,
        source_protocol_addr: appliance.ip,
        target_hardware_addr: host.station.mac,
        target_protocol_addr: host.station.ip,
    };
    ensure(answer.arp == expected, || {
        format!(
            "nic{nic}: ARP reply {:?}, expected {expected:?}",
            answer.arp
        )
    })
}

/// The appliance answers an ICMP echo request to its address on `nic<index>` with a reply
/// from that address carrying the same identifier, sequence number and payload.
pub fn answers_ping(
    host: &SegmentHost,
    appliance: Station,
    seq_no: u16,
    timeout: Duration,
) -> Outcome {
    let nic = host.nic;
    let echo = Echo {
        ident: 0x6d00 | nic as u16,
        seq_no,
        data: format!("moat end-to-end ping on nic{nic}, seq {seq_no}").into_bytes(),
    };
    let answer = host.ping(appliance, &echo, timeout)?;
    ensure(
        answer.ethernet.src_addr == appliance.mac && answer.ethernet.dst_addr == host.station.mac,
        || {
            format!(
                "nic{nic}: echo reply framed {} -> {}, expected {} -> {}",
                answer.ethernet.src_addr, answer.ethernet.dst_addr, appliance.mac, host.station.mac
            )
        },
    )?;
    ensure(
        answer.ip.src_addr == appliance.ip && answer.ip.dst_addr == host.station.ip,
        || {
            format!(
                "nic{nic}: echo reply {} -> {}, expected {} -> {}",
                answer.ip.src_addr, answer.ip.dst_addr, appliance.ip, host.station.ip
            )
        },
    )?;
    ensure(answer.ip.hop_limit > 0, || {
        format!("nic{nic}: echo reply with TTL 0")
    })?;
    ensure(answer.echo == echo, || {
        format!(
            "nic{nic}: echo reply {:?}, expected the request's {echo:?}",
            answer.echo
        )
    })
}

/// On every NIC of `vm`, ARP and then ping get correct answers.
pub fn answers_arp_and_ping_on_every_nic(vm: &Vm, report: &BootReport) -> Outcome {
    for index in 0..report.nics.len() {
        let host = vm.host(index)?;
        let appliance = appliance_on(report, index)?;
        answers_arp(host, appliance, ANSWER_TIMEOUT)?;
        answers_ping(host, appliance, 1, ANSWER_TIMEOUT)?;
    }
    Ok(())
}

/// Nothing answers an ARP request on `host`'s segment within `quiet` (a stopped appliance).
pub fn stays_silent(host: &SegmentHost, appliance: Station, quiet: Duration) -> Outcome {
    match host.try_resolve(appliance.ip, quiet)? {
        None => Ok(()),
        Some(answer) => Err(Failure::new(format!(
            "nic{}: the appliance answered ARP after it should have stopped: {:?}",
            host.nic, answer.arp
        ))),
    }
}
