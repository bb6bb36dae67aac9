#!/usr/bin/python3
"""Hostile frames for the end-to-end suite (qemu-tests/tests/e2e/hostile.rs), sent with scapy
from inside a test host's network namespace, straight onto its tap device.

Usage: frames.py IFACE APPLIANCE_IP CASE...

APPLIANCE_IP is the appliance's address on this segment: its MAC is asked by ARP, and frames
that should reach the appliance go to it. Each CASE sends the frames of one hostile case; the
test captures on the far side with a filter that matches exactly what must not come out
(unique ports and IP identifications mark each case). Exit status 0 once every case is sent;
an unknown case or an unresolvable appliance is an error naming it.
"""

import os
import socket
import sys
import time

from scapy.all import (  # noqa: E402  (scapy's own layout)
    ARP,
    ICMP,
    IP,
    TCP,
    UDP,
    Ether,
    IPOption_LSRR,
    Raw,
    conf,
    get_if_hwaddr,
    sendp,
    srp1,
)
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_RA,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.sctp import SCTP, SCTPChunkInit

conf.verb = 0

INTERNET_SERVER = "198.51.100.80"
RESOLVER = "198.51.100.53"
ROUTER = "198.51.100.1"
ALPHA = "10.137.1.2"
BETA = "10.137.2.2"
UPLINK_HOST = "10.0.2.2"
APPLIANCE_UPLINK = "10.0.2.15"
# A MAC no host of the test network has: the spoofer's.
SPOOFER_MAC = "02:66:66:66:66:66"
# IPv6 (the IPv6 suite's topology, qemu-tests/rules/ipv6.rules): the clients' unique local
# addresses, the appliance's on lan1, the internet server.
ALPHA6 = "fd00:137:1::2"
BETA6 = "fd00:137:2::2"
APPLIANCE6_LAN1 = "fd00:137:1::1"
SERVER6 = "2001:db8:5::80"
# The appliance's SLAAC address on the uplink (the test passes it in the environment).
APPLIANCE6_UPLINK_ENV = "MOAT_APPLIANCE6_UPLINK"
# More extension headers than the appliance walks (its bound is 8).
LONG_CHAIN = 12
# The port alpha's DNS query leaves from, which beta's forged error quotes.
DNS_QUERY_PORT = 40053


class Segment:
    """This host's tap and the appliance on the other end of it."""

    def __init__(self, iface, appliance_ip):
        self.iface = iface
        self.mac = get_if_hwaddr(iface)
        self.appliance_ip = appliance_ip
        answer = None
        for _ in range(5):
            answer = srp1(
                Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=appliance_ip),
                iface=iface,
                timeout=1,
            )
            if answer is not None:
                break
        if answer is None:
            sys.exit(f"frames.py: the appliance ({appliance_ip}) did not answer ARP on {iface}")
        self.appliance_mac = answer[ARP].hwsrc

    def own_ip(self):
        return {"10.137.1.1": ALPHA, "10.137.2.1": BETA, APPLIANCE_UPLINK: UPLINK_HOST}[
            self.appliance_ip
        ]

    def send(self, packets, src_mac=None, dst_mac=None):
        """Sends IP packets (or a list) to the appliance's MAC (or `dst_mac`)."""
        if not isinstance(packets, list):
            packets = [packets]
        frames = [
            Ether(src=src_mac or self.mac, dst=dst_mac or self.appliance_mac) / p for p in packets
        ]
        sendp(frames, iface=self.iface)


def tcp_to_server(seg, dport, flags="S", sport=6100, **ip):
    return IP(src=seg.own_ip(), dst=INTERNET_SERVER, **ip) / TCP(sport=sport, dport=dport, flags=flags)


# --- From a client (alpha on lan1, beta on lan2) ------------------------------------------


def case_sctp(seg):
    """Finding 1: an SCTP INIT to the blocked port 9999, and one to 9998 (allowed)."""
    for port in (9999, 9998):
        seg.send(IP(src=seg.own_ip(), dst=INTERNET_SERVER) / SCTP(sport=5000, dport=port) / SCTPChunkInit(init_tag=0x6D6F6174))


def case_refragment_wrap(seg):
    """Finding 2: an allowed first fragment (SYN to :80), then a later fragment of the same
    datagram at offset 64160 with a SYN to port 25 at byte 1376 (a wrapped re-fragment
    would start with it)."""
    first = IP(src=seg.own_ip(), dst=INTERNET_SERVER, id=0x7A02, flags="MF", frag=0, proto=6) / Raw(
        bytes(TCP(sport=6200, dport=80, flags="S")) + b"\0" * 1460
    )
    smuggled = bytes(TCP(sport=6200, dport=25, flags="S", chksum=0))
    later_payload = b"\0" * 1376 + smuggled + b"\0" * (1480 - 1376 - len(smuggled))
    later = IP(src=seg.own_ip(), dst=INTERNET_SERVER, id=0x7A02, flags="MF", frag=64160 // 8, proto=6) / Raw(later_payload)
    seg.send([first, later])


def case_source_route(seg):
    """Finding 3: a SYN with a loose source route (LSRR) through a router."""
    seg.send(IP(src=seg.own_ip(), dst=INTERNET_SERVER, options=[IPOption_LSRR(routers=[ROUTER])]) / TCP(sport=6300, dport=80, flags="S"))


def case_broadcast_mac(seg):
    """Finding 4: a unicast IP datagram in a link-layer broadcast frame."""
    seg.send(IP(src=seg.own_ip(), dst=INTERNET_SERVER) / UDP(sport=6400, dport=7777) / Raw(b"moat"), dst_mac="ff:ff:ff:ff:ff:ff")


def case_dns_query(seg):
    """Finding 5, first half: alpha asks the resolver from a known port (a real socket, so
    its own stack does not answer the reply with an ICMP error)."""
    query = bytes.fromhex("6d6f01000001000000000000") + b"\x03www\x04moat\x04test\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((seg.own_ip(), DNS_QUERY_PORT))
        s.settimeout(5)
        s.sendto(query, (RESOLVER, 53))
        try:
            s.recvfrom(512)
        except socket.timeout:
            sys.exit("frames.py: the resolver did not answer alpha's query")


def case_forged_error(seg):
    """Finding 5, second half: beta, from its own address, says alpha's DNS answer could not
    be delivered."""
    quote = IP(src=RESOLVER, dst=ALPHA, ttl=63) / UDP(sport=53, dport=DNS_QUERY_PORT, len=60, chksum=0)
    seg.send(IP(src=seg.own_ip(), dst=RESOLVER) / ICMP(type=3, code=3) / Raw(bytes(quote)[:28]))


def case_arp_queue(seg):
    """Finding 7: UDP to sixteen unused uplink addresses, a few packets each."""
    seg.send([IP(src=seg.own_ip(), dst=f"10.0.2.{100 + i}") / UDP(sport=6500, dport=7050) for i in range(16) for _ in range(5)])


def case_ttl_probes(seg):
    """Finding 9: sixty TTL-1 probes (each costs the appliance an ICMP time exceeded)."""
    seg.send([IP(src=seg.own_ip(), dst=INTERNET_SERVER, ttl=1) / UDP(sport=6600, dport=33434 + i) for i in range(60)])


def case_too_big(seg):
    """Finding 9, the other client: a don't-fragment datagram too big for the uplink's MTU
    (1400), which must be answered with fragmentation needed."""
    seg.send(IP(src=seg.own_ip(), dst=INTERNET_SERVER, flags="DF") / UDP(sport=6700, dport=7040) / Raw(b"\0" * 1450))


def case_broadcast_sender_arp(seg):
    """Finding 11: an ARP reply saying this host's address is at ff:ff:ff:ff:ff:ff."""
    message = ARP(op=2, hwsrc="ff:ff:ff:ff:ff:ff", psrc=seg.own_ip(), hwdst=seg.appliance_mac, pdst=seg.appliance_ip)
    sendp(Ether(src=seg.mac, dst=seg.appliance_mac) / message, iface=seg.iface)


def case_take_over_client(seg):
    """Finding 12 and ARP spoofing of another client: another MAC claims alpha's (pinned)
    address by ARP, and sends from it."""
    claim = ARP(op=2, hwsrc=SPOOFER_MAC, psrc=ALPHA, hwdst="ff:ff:ff:ff:ff:ff", pdst=ALPHA)
    sendp(Ether(src=SPOOFER_MAC, dst="ff:ff:ff:ff:ff:ff") / claim, iface=seg.iface)
    seg.send(IP(src=ALPHA, dst=INTERNET_SERVER) / UDP(sport=6800, dport=7030), src_mac=SPOOFER_MAC)


def case_spoof_gateway(seg):
    """ARP spoofing of the gateway: this host claims the appliance's own address."""
    claim = ARP(op=2, hwsrc=seg.mac, psrc=seg.appliance_ip, hwdst="ff:ff:ff:ff:ff:ff", pdst=seg.appliance_ip)
    sendp(Ether(src=seg.mac, dst="ff:ff:ff:ff:ff:ff") / claim, iface=seg.iface)


def case_malformed(seg):
    """Malformed headers, each marked by its IP identification 0x7b01..0x7b04: a header
    length of 60 bytes, a total length beyond the frame, a bad header checksum, a TCP
    header cut to 12 bytes."""
    src = seg.own_ip()
    tcp = TCP(sport=6900, dport=80, flags="S")
    long_header = bytearray(bytes(IP(src=src, dst=INTERNET_SERVER, id=0x7B01) / tcp))
    long_header[0] = 0x4F  # IHL 15: the "header" swallows the TCP header.
    seg.send(
        [
            IP(bytes(long_header)),
            IP(src=src, dst=INTERNET_SERVER, id=0x7B02, len=1000) / tcp,
            IP(src=src, dst=INTERNET_SERVER, id=0x7B03, chksum=0x1234) / tcp,
            IP(src=src, dst=INTERNET_SERVER, id=0x7B04, proto=6) / Raw(bytes(tcp)[:12]),
        ]
    )


def case_tiny_fragment(seg):
    """RFC 1858 tiny fragment: the first fragment carries only 8 bytes of TCP header (no
    flags), the rest follows. IP identification 0x7a10."""
    tcp = bytes(IP(src=seg.own_ip(), dst=INTERNET_SERVER) / TCP(sport=7010, dport=80, flags="S"))[20:]
    seg.send(
        [
            IP(src=seg.own_ip(), dst=INTERNET_SERVER, id=0x7A10, flags="MF", frag=0, proto=6) / Raw(tcp[:8]),
            IP(src=seg.own_ip(), dst=INTERNET_SERVER, id=0x7A10, frag=1, proto=6) / Raw(tcp[8:]),
        ]
    )


def case_overlapping_fragment(seg):
    """An allowed first fragment (SYN to :80), then a fragment at offset 8 that would
    overwrite the TCP header (its flags and the rest). IP identification 0x7a11."""
    tcp = bytes(IP(src=seg.own_ip(), dst=INTERNET_SERVER) / TCP(sport=7011, dport=80, flags="S") / Raw(b"\0" * 16))[20:]
    seg.send(
        [
            IP(src=seg.own_ip(), dst=INTERNET_SERVER, id=0x7A11, flags="MF", frag=0, proto=6) / Raw(tcp[:24]),
            IP(src=seg.own_ip(), dst=INTERNET_SERVER, id=0x7A11, frag=1, proto=6) / Raw(b"\xff" * 28),
        ]
    )


TCP_FLAG_COMBINATIONS = [(7020, "SF"), (7021, ""), (7022, "FPU"), (7023, "SR")]


def case_flag_combinations(seg):
    """SYN+FIN, null, Xmas (FIN+PSH+URG), SYN+RST: to the internet server, ports 7020-7023."""
    seg.send([tcp_to_server(seg, port, flags) for port, flags in TCP_FLAG_COMBINATIONS])


# --- From the uplink ----------------------------------------------------------------------


def case_direct_to_forwarded_client(seg):
    """Finding 6: a SYN straight to alpha's private address and the forwarded port (sport
    6006), and one through the forward (sport 6007, must arrive)."""
    seg.send(
        [
            IP(src=UPLINK_HOST, dst=ALPHA) / TCP(sport=6006, dport=80, flags="S"),
            IP(src=UPLINK_HOST, dst=APPLIANCE_UPLINK) / TCP(sport=6007, dport=8080, flags="S"),
        ]
    )


def case_source_route_in(seg):
    """Finding 3 inbound: a SYN through the forward with a loose source route (sport 6008)."""
    seg.send(IP(src=UPLINK_HOST, dst=APPLIANCE_UPLINK, options=[IPOption_LSRR(routers=[ALPHA])]) / TCP(sport=6008, dport=8080, flags="S"))


def case_flag_combinations_in(seg):
    """The flag combinations through the forward (source ports 7020-7023)."""
    seg.send([IP(src=UPLINK_HOST, dst=APPLIANCE_UPLINK) / TCP(sport=port, dport=8080, flags=flags) for port, flags in TCP_FLAG_COMBINATIONS])


def case_syn_flood_forward(seg):
    """Finding 8: 4,096 SYNs from the internet to the port forward."""
    seg.send([IP(src=ROUTER, dst=APPLIANCE_UPLINK) / TCP(sport=10000 + i, dport=8080, flags="S") for i in range(4096)])


def case_spoof_appliance(seg):
    """ARP spoofing from the uplink: another MAC claims the appliance's uplink address."""
    claim = ARP(op=2, hwsrc=SPOOFER_MAC, psrc=APPLIANCE_UPLINK, hwdst="ff:ff:ff:ff:ff:ff", pdst=APPLIANCE_UPLINK)
    sendp(Ether(src=SPOOFER_MAC, dst="ff:ff:ff:ff:ff:ff") / claim, iface=seg.iface)


# --- IPv6 (each case marks its packets with its own flow label: a capture filter cannot
# walk extension headers, but the flow label is in the fixed header) ----------------------


def udp6(src, dst, label, chain=None, dport=7100):
    """A UDP datagram with flow label `label` behind extension headers `chain`."""
    packet = IPv6(src=src, dst=dst, fl=label)
    for header in chain or []:
        packet = packet / header
    return packet / UDP(sport=7100, dport=dport) / Raw(b"moat-v6")


def tcp6_fragments(src, dst, label, ident, first_len, dport=443):
    """A TCP SYN (an MSS option and sixteen bytes of data: forty in all) cut after `first_len` bytes into a
    first fragment and the rest, each with flow label `label`."""
    segment = bytes(IPv6(src=src, dst=dst) / TCP(sport=7200, dport=dport, flags="S", options=[("MSS", 1440)]) / Raw(b"m" * 16))[40:]
    first = IPv6(src=src, dst=dst, fl=label) / IPv6ExtHdrFragment(nh=6, m=1, offset=0, id=ident) / Raw(segment[:first_len])
    rest = IPv6(src=src, dst=dst, fl=label) / IPv6ExtHdrFragment(nh=6, m=0, offset=first_len // 8, id=ident) / Raw(segment[first_len:])
    return [first, rest]


def case_v6_control(seg):
    """Positive controls: a plain datagram (flow label 0x7100) and one behind a short chain
    (hop-by-hop and two destination options, 0x7109) go out."""
    seg.send(udp6(ALPHA6, SERVER6, 0x7100))
    seg.send(udp6(ALPHA6, SERVER6, 0x7109, [IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrDestOpt()]))


def case_v6_long_chain(seg):
    """More extension headers than the appliance's bound, and a hop-by-hop header that is
    not first (RFC 8200 allows it only first)."""
    seg.send(udp6(ALPHA6, SERVER6, 0x7101, [IPv6ExtHdrDestOpt() for _ in range(LONG_CHAIN)]))
    seg.send(udp6(ALPHA6, SERVER6, 0x7101, [IPv6ExtHdrDestOpt(), IPv6ExtHdrHopByHop()]))


def case_v6_rh0(seg):
    """A type-0 routing header (RFC 5095), with segments left and without."""
    for left in (1, 0):
        seg.send(udp6(ALPHA6, SERVER6, 0x7102, [IPv6ExtHdrRouting(type=0, segleft=left, addresses=[BETA6])]))


def case_v6_tiny_fragment(seg):
    """A first fragment with only eight bytes of the TCP header (ports, not the flags), and
    one whose three destination options leave the TCP header for the second fragment (RFC
    7112); then the rest of each."""
    seg.send(tcp6_fragments(ALPHA6, SERVER6, 0x7103, 0x7103, 8))
    segment = bytes(IPv6(src=ALPHA6, dst=SERVER6) / TCP(sport=7203, dport=443, flags="S"))[40:]
    chain = bytes(IPv6ExtHdrDestOpt(nh=60) / IPv6ExtHdrDestOpt(nh=60) / IPv6ExtHdrDestOpt(nh=6)) + segment
    seg.send(
        [
            IPv6(src=ALPHA6, dst=SERVER6, fl=0x7103) / IPv6ExtHdrFragment(nh=60, m=1, offset=0, id=0x7113) / Raw(chain[:16]),
            IPv6(src=ALPHA6, dst=SERVER6, fl=0x7103) / IPv6ExtHdrFragment(nh=60, m=0, offset=2, id=0x7113) / Raw(chain[16:]),
        ]
    )


def case_v6_overlapping_fragment(seg):
    """A whole first fragment (the SYN's forty bytes, allowed), then a later one of the same
    datagram that overlaps it from byte 8 (rewriting the TCP header's flags)."""
    first, _ = tcp6_fragments(ALPHA6, SERVER6, 0x7104, 0x7104, 40)
    overlap = IPv6(src=ALPHA6, dst=SERVER6, fl=0x7104) / IPv6ExtHdrFragment(nh=6, m=0, offset=1, id=0x7104) / Raw(b"\0" * 24)
    seg.send([first, overlap])


def case_v6_spoofed(seg):
    """IPv6 sources alpha cannot have: beta's, one outside its prefix, a link-local one (to
    the server, beyond the link)."""
    for src in (BETA6, "2001:db8:99::5", "fe80::1234"):
        seg.send(udp6(src, SERVER6, 0x7105))


def case_v6_rogue_ra(seg):
    """A router advertisement from a client: a default router for half an hour with an
    autonomous prefix of its own."""
    ra = (
        IPv6(src="fe80::66", dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(routerlifetime=1800)
        / ICMPv6NDOptSrcLLAddr(lladdr=SPOOFER_MAC)
        / ICMPv6NDOptPrefixInfo(prefix="2001:db8:bad::", prefixlen=64, L=1, A=1, validlifetime=86400, preferredlifetime=14400)
    )
    seg.send(ra, src_mac=SPOOFER_MAC, dst_mac="33:33:00:00:00:01")


def case_v6_na_takeover(seg):
    """Neighbour advertisements from the spoofer's MAC claiming alpha's address, the
    appliance's address on lan1 and beta's (another client's, on another link), with the
    override flag."""
    for target in (ALPHA6, APPLIANCE6_LAN1, BETA6):
        na = IPv6(src="fe80::66", dst="ff02::1", hlim=255) / ICMPv6ND_NA(R=0, S=0, O=1, tgt=target) / ICMPv6NDOptDstLLAddr(lladdr=SPOOFER_MAC)
        seg.send(na, src_mac=SPOOFER_MAC, dst_mac="33:33:00:00:00:01")


def case_v6_echo(seg):
    """Alpha pings the server (its replies come back through the appliance)."""
    for seq in range(3):
        seg.send(IPv6(src=ALPHA6, dst=SERVER6) / ICMPv6EchoRequest(id=0x7112, seq=seq))
        time.sleep(0.2)


def case_v6_in(seg):
    """From the uplink: straight at alpha's unique local address (nothing inbound), through a
    type-0 routing header naming it, and tiny fragments towards it."""
    appliance = os.environ.get(APPLIANCE6_UPLINK_ENV)
    if not appliance:
        sys.exit(f"frames.py: v6_in needs the appliance's uplink address in ${APPLIANCE6_UPLINK_ENV}")
    seg.send(udp6(SERVER6, ALPHA6, 0x7111))
    seg.send(IPv6(src=SERVER6, dst=ALPHA6, fl=0x7111) / ICMPv6EchoRequest(id=0x7111))
    seg.send(udp6(SERVER6, appliance, 0x7111, [IPv6ExtHdrRouting(type=0, segleft=1, addresses=[ALPHA6])]))
    seg.send(tcp6_fragments(SERVER6, ALPHA6, 0x7111, 0x7111, 8, dport=22))


CASES = {name[len("case_"):]: f for name, f in globals().items() if name.startswith("case_")}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    iface, appliance_ip, cases = argv[1], argv[2], argv[3:]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"frames.py: unknown case(s) {', '.join(unknown)}; known: {', '.join(sorted(CASES))}")
    seg = Segment(iface, appliance_ip)
    for case in cases:
        CASES[case](seg)
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv)
