//! The packet capture: dropped frames (and, if asked, frames `pass … log` rules let
//! through) become pcap records, byte for byte as they arrived; frames that go on do not.

mod appliance_common;

use appliance_common::*;
use dataplane::appliance::ApplianceOptions;
use dataplane::capture::pcap::{GLOBAL_HEADER_LEN, RECORD_HEADER_LEN};
use dataplane::capture::{CaptureConfig, CaptureMode, CaptureStats};
use dataplane::policy::PolicyBuf;
use dataplane::testutil::packets;
use dataplane::testutil::packets6::{self, addr};
use smoltcp::wire::EthernetProtocol;
use std::sync::LazyLock;

/// The default shape, with the clients' web traffic passed and logged.
static LOGGED_WEB: LazyLock<PolicyBuf> = LazyLock::new(|| {
    match rules::compile(
        "logged-web.rules",
        "interface uplink  nic0 address 10.0.2.15/24 gateway 10.0.2.2 dns 10.0.2.3
         interface clients nic1 address 10.137.1.1/24
         nat from clients to uplink
         pass log from clients to uplink tcp port 443
         pass from clients to uplink
         default block log",
    ) {
        Ok(compiled) => compiled.policy,
        Err(error) => panic!("{}", error.render()),
    }
});

fn lab_capturing(policy: &'static PolicyBuf, mode: CaptureMode) -> Lab {
    let options = ApplianceOptions {
        capture: CaptureConfig {
            mode,
            ..CaptureConfig::default()
        },
        ..ApplianceOptions::default()
    };
    let mut lab = Lab::with_options(policy, options);
    lab.attach(CLIENT);
    lab.teach(GATEWAY);
    lab
}

/// The frames recorded so far (drains the capture), after checking the global header.
fn recorded_frames(lab: &mut Lab) -> Vec<Vec<u8>> {
    let mut stream = Vec::new();
    lab.appliance.capture_mut().drain(usize::MAX, |bytes| {
        stream.extend_from_slice(bytes);
        bytes.len()
    });
    assert_eq!(stream[..4], 0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    let mut frames = Vec::new();
    let mut rest = &stream[GLOBAL_HEADER_LEN..];
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        frames.push(rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len].to_vec());
        rest = &rest[RECORD_HEADER_LEN + len..];
    }
    frames
}

#[test]
fn a_blocked_frame_is_recorded_as_it_arrived_and_a_forwarded_one_is_not() {
    let mut lab = lab_capturing(&DEFAULT, CaptureMode::Drops);
    let blocked = packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22);
    let blocked_frame = packets::ethernet(GATEWAY.mac, appliance_mac(UPLINK), &blocked);
    lab.receive(UPLINK, blocked_frame.clone()).assert_nothing();
    lab.send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443))
        .ipv4_to(GATEWAY);

    assert_eq!(recorded_frames(&mut lab), [blocked_frame]);
    assert_eq!(
        lab.appliance.stats().capture,
        Some(CaptureStats {
            captured: 1,
            dropped: 0
        })
    );
}

#[test]
fn spoofed_and_malformed_frames_are_recorded_too() {
    let mut lab = lab_capturing(&DEFAULT, CaptureMode::Drops);
    let spoofed = packets::tcp_syn([10, 137, 9, 9], 40000, SERVER, 443);
    lab.send(CLIENT, &spoofed).assert_nothing();
    let mut truncated = packets::ethernet(CLIENT.mac, appliance_mac(CLIENTS), &spoofed);
    truncated.truncate(30);
    lab.receive(CLIENTS, truncated.clone()).assert_nothing();
    let frames = recorded_frames(&mut lab);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1], truncated);
}

#[test]
fn a_blocked_ipv6_frame_is_recorded_as_it_arrived_and_a_forwarded_one_is_not() {
    let options = ApplianceOptions {
        capture: CaptureConfig {
            mode: CaptureMode::Drops,
            ..CaptureConfig::default()
        },
        ..ApplianceOptions::default()
    };
    let mut lab = Lab::with_options(&DUAL_STACK, options);
    lab.teach6_all(&[CLIENT6]);
    let server = addr(SERVER6);
    let blocked = packets6::tcp_syn(server, 40000, CLIENT6.addr(), 22);
    let blocked_frame = packets::ethernet_of(
        EthernetProtocol::Ipv6,
        GATEWAY.mac,
        appliance_mac(UPLINK),
        &blocked,
    );
    lab.receive(UPLINK, blocked_frame.clone()).assert_nothing();
    lab.send6(
        CLIENT6,
        &packets6::tcp_syn(CLIENT6.addr(), 40000, server, 443),
    )
    .ipv6_upstream();

    assert_eq!(recorded_frames(&mut lab), [blocked_frame]);
}

#[test]
fn logged_passes_are_recorded_only_when_asked() {
    let syn = packets::tcp_syn(CLIENT.ip, 40000, SERVER, 443);
    let mut lab = lab_capturing(&LOGGED_WEB, CaptureMode::Drops);
    lab.send(CLIENT, &syn).ipv4_to(GATEWAY);
    assert_eq!(recorded_frames(&mut lab).len(), 0);

    let mut lab = lab_capturing(&LOGGED_WEB, CaptureMode::DropsAndLoggedPasses);
    lab.send(CLIENT, &syn).ipv4_to(GATEWAY);
    lab.send(CLIENT, &packets::tcp_syn(CLIENT.ip, 40001, SERVER, 80))
        .ipv4_to(GATEWAY);
    assert_eq!(
        recorded_frames(&mut lab).len(),
        1,
        "only the logged rule's packet"
    );
}

#[test]
fn without_a_capture_nothing_is_recorded_or_reported() {
    let mut lab = lab_capturing(&DEFAULT, CaptureMode::Off);
    lab.send(GATEWAY, &packets::tcp_syn(REMOTE, 40000, CLIENT.ip, 22));
    assert_eq!(lab.appliance.capture_mut().pending(), 0);
    assert_eq!(lab.appliance.stats().capture, None);
}
