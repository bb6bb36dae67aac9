//! [`Lab`]: the appliance under test, its fake clock, and hosts' frames in; [`Sent`]: what
//! came out, checked frame by frame.

use dataplane::appliance::ApplianceOptions;
use dataplane::arp::{self, ArpMessage};
use dataplane::drops::DropReason;
use dataplane::offload::{NicOffloads, Offload};
use dataplane::policy::PolicyBuf;
use dataplane::sink::RecordingSink;
use dataplane::testutil::packets::{self, checksums_valid};
use dataplane::{Appliance, ApplianceConfig};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, Ipv4Packet};

use super::{
    appliance_ip, appliance_mac, capture_logs, ip, take_log_lines, Host, CLIENT, CLIENT2, GATEWAY,
};

/// What the appliance sent in answer to one input, in transmission order.
#[derive(Debug, Default)]
pub struct Sent {
    pub frames: Vec<(u8, Vec<u8>)>,
}

impl From<RecordingSink> for Sent {
    fn from(sink: RecordingSink) -> Sent {
        Sent {
            frames: sink.frames,
        }
    }
}

/// What the appliance sent in answer to an offloaded frame, and the offload metadata each
/// frame went with (`offloads[i]` for `sent.frames[i]`; plain for most).
#[derive(Debug, Default)]
pub struct SentOffloaded {
    pub sent: Sent,
    pub offloads: Vec<Offload>,
}

/// An appliance, its fake clock, and a way to talk to it.
pub struct Lab {
    pub appliance: Appliance<'static>,
    now: Instant,
}

impl Lab {
    /// An appliance running `policy` with default options, booted at an arbitrary time.
    pub fn new(policy: &'static PolicyBuf) -> Lab {
        Lab::with_options(policy, ApplianceOptions::default())
    }

    /// An appliance running `policy` with default options, both clients attached and the
    /// gateway known: the network most pipeline tests start from.
    pub fn with_clients(policy: &'static PolicyBuf) -> Lab {
        Lab::with_clients_and_options(policy, ApplianceOptions::default())
    }

    /// [`Lab::with_clients`] with `options`.
    pub fn with_clients_and_options(policy: &'static PolicyBuf, options: ApplianceOptions) -> Lab {
        let mut lab = Lab::with_options(policy, options);
        lab.attach(CLIENT);
        lab.attach(CLIENT2);
        lab.teach(GATEWAY);
        lab
    }

    /// An appliance running `policy` with `options`.
    pub fn with_options(policy: &'static PolicyBuf, options: ApplianceOptions) -> Lab {
        Lab::with_config(policy, options, |_| {})
    }

    /// An appliance running `policy` with `options` whose every NIC takes `offloads` on
    /// transmission.
    pub fn with_nic_offloads(
        policy: &'static PolicyBuf,
        options: ApplianceOptions,
        offloads: NicOffloads,
    ) -> Lab {
        Lab::with_config(policy, options, |config| config.offloads.fill(offloads))
    }

    /// An appliance running `policy` with `options`, on NICs addressed as `policy` says and
    /// then changed by `edit` (addressing no valid ruleset or lease gives, for tests of the
    /// data plane's own defences).
    pub fn with_config(
        policy: &'static PolicyBuf,
        options: ApplianceOptions,
        edit: impl FnOnce(&mut ApplianceConfig),
    ) -> Lab {
        capture_logs();
        take_log_lines();
        let policy = policy.as_policy();
        let nic_count = policy
            .interfaces
            .iter()
            .map(|i| i.nic as usize + 1)
            .max()
            .unwrap_or(0);
        let macs: Vec<EthernetAddress> = (0..nic_count as u8).map(appliance_mac).collect();
        let mut config = ApplianceConfig::from_policy(&policy, &macs);
        edit(&mut config);
        let now = Instant::from_secs(1_000);
        Lab {
            appliance: Appliance::new(policy, &config, options, now),
            now,
        }
    }

    /// The fake clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the fake clock on.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Runs the appliance's timers at the current time.
    pub fn poll(&mut self) -> Sent {
        let mut sink = RecordingSink::default();
        self.appliance.poll(self.now, &mut sink);
        sink.into()
    }

    /// The appliance announces its addresses (as at boot).
    pub fn announce(&mut self) -> Sent {
        let mut sink = RecordingSink::default();
        self.appliance.announce(self.now, &mut sink);
        sink.into()
    }

    /// Hands the appliance a raw frame on `nic`.
    pub fn receive(&mut self, nic: u8, mut frame: Vec<u8>) -> Sent {
        let mut sink = RecordingSink::default();
        self.appliance.receive(nic, &mut frame, self.now, &mut sink);
        sink.into()
    }

    /// Hands the appliance a raw frame on `nic` with offload metadata.
    pub fn receive_offloaded(
        &mut self,
        nic: u8,
        mut frame: Vec<u8>,
        offload: Offload,
    ) -> SentOffloaded {
        let mut sink = RecordingSink::default();
        self.appliance
            .receive_offloaded(nic, &mut frame, offload, self.now, &mut sink);
        let offloads = std::mem::take(&mut sink.offloads);
        SentOffloaded {
            sent: sink.into(),
            offloads,
        }
    }

    /// `from` sends the IPv4 `packet` to the appliance's MAC with offload metadata.
    pub fn send_offloaded(&mut self, from: Host, packet: &[u8], offload: Offload) -> SentOffloaded {
        let frame = packets::ethernet(from.mac, appliance_mac(from.nic), packet);
        self.receive_offloaded(from.nic, frame, offload)
    }

    /// `from` sends the IPv4 `packet` to the appliance's MAC (its next hop).
    pub fn send(&mut self, from: Host, packet: &[u8]) -> Sent {
        let frame = packets::ethernet(from.mac, appliance_mac(from.nic), packet);
        self.receive(from.nic, frame)
    }

    /// `from` broadcasts an ARP request for `target`.
    pub fn arp_request(&mut self, from: Host, target: [u8; 4]) -> Sent {
        let message = arp::request(from.mac, ip(from.ip), ip(target));
        self.receive(from.nic, arp_frame(EthernetAddress::BROADCAST, &message))
    }

    /// `host` answers the appliance's ARP request for it: the appliance learns its MAC and
    /// sends whatever was waiting for it.
    pub fn arp_reply(&mut self, host: Host) -> Sent {
        let mac = appliance_mac(host.nic);
        let message = ArpMessage {
            operation: ArpOperation::Reply,
            sender_mac: host.mac,
            sender_ip: ip(host.ip),
            target_mac: mac,
            target_ip: ip(appliance_ip(host.nic)),
        };
        self.receive(host.nic, arp_frame(mac, &message))
    }

    /// `host` resolves the appliance's address on its NIC, as a host does before it uses
    /// the appliance as its gateway. The appliance (and its local stack) learn the host's
    /// MAC on the way.
    pub fn attach(&mut self, host: Host) {
        let sent = self.arp_request(host, appliance_ip(host.nic));
        let reply = sent.arp_to(host);
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!(reply.sender_mac, appliance_mac(host.nic));
        assert_eq!(reply.sender_ip, ip(appliance_ip(host.nic)));
        assert_eq!((reply.target_mac, reply.target_ip), (host.mac, ip(host.ip)));
    }

    /// Teaches the appliance `host`'s MAC without waiting for it to ask.
    pub fn teach(&mut self, host: Host) {
        let sent = self.arp_reply(host);
        assert!(
            sent.frames.is_empty(),
            "an ARP reply with nothing waiting sends nothing: {sent:?}"
        );
    }

    /// Drops counted for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.appliance.drop_counters().get(reason)
    }

    /// Live states.
    pub fn live_states(&self) -> u32 {
        self.appliance.state_stats().live
    }
}

/// The payload of `frame`, which must go out of `nic`, from the appliance's MAC to `dst`,
/// with `ethertype`.
fn checked_payload(
    (out_nic, frame): &(u8, Vec<u8>),
    nic: u8,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
) -> Vec<u8> {
    assert_eq!(*out_nic, nic, "egress NIC");
    let frame = EthernetFrame::new_checked(&frame[..]).expect("a whole Ethernet frame");
    assert_eq!(frame.src_addr(), appliance_mac(nic), "Ethernet source");
    assert_eq!(frame.dst_addr(), dst, "Ethernet destination");
    assert_eq!(frame.ethertype(), ethertype, "EtherType");
    frame.payload().to_vec()
}

fn arp_frame(dst: EthernetAddress, message: &ArpMessage) -> Vec<u8> {
    let mut frame = vec![0u8; arp::ARP_FRAME_LEN];
    arp::emit(&mut frame, dst, message);
    frame
}

impl Sent {
    /// The one frame sent, which must go out of `nic`, from the appliance's MAC to `dst`,
    /// with `ethertype`; its payload.
    fn only_frame(&self, nic: u8, dst: EthernetAddress, ethertype: EthernetProtocol) -> Vec<u8> {
        let [frame] = &self.frames[..] else {
            panic!(
                "expected exactly one frame on nic{nic}, got {} frames: {self:?}",
                self.frames.len()
            )
        };
        checked_payload(frame, nic, dst, ethertype)
    }

    /// The one frame sent, which must be an IPv4 packet to `host` (with every checksum
    /// valid); the packet.
    pub fn ipv4_to(&self, host: Host) -> Vec<u8> {
        let packet = self.only_frame(host.nic, host.mac, EthernetProtocol::Ipv4);
        assert!(
            checksums_valid(&packet),
            "checksums of the packet sent to {host:?}"
        );
        packet
    }

    /// Every frame sent, each of which must be an IPv4 packet to `host` (with every
    /// checksum valid); the packets, in order.
    pub fn each_ipv4_to(&self, host: Host) -> Vec<Vec<u8>> {
        let packets: Vec<Vec<u8>> = self
            .frames
            .iter()
            .map(|frame| checked_payload(frame, host.nic, host.mac, EthernetProtocol::Ipv4))
            .collect();
        assert!(
            packets.iter().all(|p| checksums_valid(p)),
            "checksums of the packets sent to {host:?}"
        );
        packets
    }

    /// Every frame sent, each of which must be an ARP message broadcast by the appliance;
    /// `(nic, message)` in order.
    pub fn arp_broadcasts(&self) -> Vec<(u8, ArpMessage)> {
        self.frames
            .iter()
            .map(|frame| {
                let payload = checked_payload(
                    frame,
                    frame.0,
                    EthernetAddress::BROADCAST,
                    EthernetProtocol::Arp,
                );
                (frame.0, arp::parse(&payload).expect("a valid ARP message"))
            })
            .collect()
    }

    /// The one frame sent, which must be an IPv4 fragment to `host` with a valid header
    /// checksum; the fragment. (Its transport checksum covers the whole datagram: check
    /// it after reassembly.)
    pub fn ipv4_fragment_to(&self, host: Host) -> Vec<u8> {
        let fragment = self.only_frame(host.nic, host.mac, EthernetProtocol::Ipv4);
        let ip = Ipv4Packet::new_checked(&fragment[..]).expect("an IPv4 packet");
        assert!(
            ip.verify_checksum(),
            "header checksum of the fragment sent to {host:?}"
        );
        assert!(ip.more_frags() || ip.frag_offset() != 0, "a fragment");
        fragment
    }

    /// Every frame sent, each of which must be an IPv4 fragment to `host` with a valid
    /// header checksum; the fragments, in order.
    pub fn each_ipv4_fragment_to(&self, host: Host) -> Vec<Vec<u8>> {
        self.frames
            .iter()
            .map(|frame| {
                let fragment = checked_payload(frame, host.nic, host.mac, EthernetProtocol::Ipv4);
                let ip = Ipv4Packet::new_checked(&fragment[..]).expect("an IPv4 packet");
                assert!(
                    ip.verify_checksum(),
                    "header checksum of a fragment to {host:?}"
                );
                assert!(ip.more_frags() || ip.frag_offset() != 0, "a fragment");
                fragment
            })
            .collect()
    }

    /// The one frame sent, which must be an ARP message to `host`.
    pub fn arp_to(&self, host: Host) -> ArpMessage {
        let payload = self.only_frame(host.nic, host.mac, EthernetProtocol::Arp);
        arp::parse(&payload).expect("a valid ARP message")
    }

    /// The one frame sent, which must be the appliance's broadcast ARP request, on `nic`,
    /// for `target`.
    pub fn assert_arp_request(&self, nic: u8, target: [u8; 4]) {
        let payload = self.only_frame(nic, EthernetAddress::BROADCAST, EthernetProtocol::Arp);
        let message = arp::parse(&payload).expect("a valid ARP message");
        let expected = arp::request(appliance_mac(nic), ip(appliance_ip(nic)), ip(target));
        assert_eq!(message, expected, "ARP request");
    }

    /// Asserts that nothing was sent, on any NIC.
    pub fn assert_nothing(&self) {
        assert!(
            self.frames.is_empty(),
            "expected nothing sent, got {self:?}"
        );
    }
}
