//! [`Connection`]: a client's masqueraded TCP connection, each segment checked on its way
//! through.

use std::net::SocketAddrV4;

use dataplane::packet::tcp_flags;

use super::{ip, segment, sock, tcp_of, Host, Lab, TcpSeen, APPLIANCE_UPLINK, GATEWAY};

/// A client's TCP connection to a server behind the gateway, masqueraded, and how far
/// each side's sequence numbers have come.
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    pub client: Host,
    /// The client's end, as the client knows it.
    pub inside: SocketAddrV4,
    /// The client's end, as the server knows it (after masquerade).
    pub outside: SocketAddrV4,
    pub server: SocketAddrV4,
    /// The next sequence number of each side.
    pub client_seq: u32,
    pub server_seq: u32,
}

/// The client's initial sequence number in [`Connection`]s (the SYN builder's).
pub const CLIENT_ISN: u32 = 1000;
/// The server's initial sequence number in [`Connection`]s.
pub const SERVER_ISN: u32 = 5000;

impl Connection {
    /// `client` connects from `port` to `server` (the gateway's MAC must be known): the
    /// three-way handshake, each segment checked on its way through.
    pub fn open(lab: &mut Lab, client: Host, port: u16, server: SocketAddrV4) -> Connection {
        let inside = sock(client.ip, port);
        let syn = segment(inside, server, CLIENT_ISN, 0, tcp_flags::SYN, &[]);
        let out = tcp_of(&lab.send(client, &syn).ipv4_to(GATEWAY));
        assert_eq!(
            (out.dst, out.flags),
            (server, tcp_flags::SYN),
            "the SYN leaves the uplink"
        );
        assert_eq!(
            *out.src.ip(),
            ip(APPLIANCE_UPLINK),
            "the SYN leaves masqueraded"
        );
        let mut connection = Connection {
            client,
            inside,
            outside: out.src,
            server,
            client_seq: CLIENT_ISN + 1,
            server_seq: SERVER_ISN,
        };
        connection.server_sends(lab, tcp_flags::SYN | tcp_flags::ACK, &[]);
        connection.client_sends(lab, tcp_flags::ACK, &[]);
        connection
    }

    /// The client sends a segment with `flags` and `payload`; it must leave the uplink
    /// translated, with its numbers and payload intact. Returns it as the server sees it.
    pub fn client_sends(&mut self, lab: &mut Lab, flags: u8, payload: &[u8]) -> TcpSeen {
        let sent = segment(
            self.inside,
            self.server,
            self.client_seq,
            self.server_seq,
            flags,
            payload,
        );
        let seen = tcp_of(&lab.send(self.client, &sent).ipv4_to(GATEWAY));
        let expected = TcpSeen {
            src: self.outside,
            dst: self.server,
            ..tcp_of(&sent)
        };
        assert_eq!(
            seen, expected,
            "the client's segment as the server receives it"
        );
        self.client_seq = self.client_seq.wrapping_add(sequence_space(flags, payload));
        seen
    }

    /// The server sends a segment with `flags` and `payload`; it must reach the client
    /// translated back, with its numbers and payload intact. Returns it as the client
    /// sees it.
    pub fn server_sends(&mut self, lab: &mut Lab, flags: u8, payload: &[u8]) -> TcpSeen {
        let sent = self.segment_from_server(flags, payload);
        let seen = tcp_of(&lab.send(GATEWAY, &sent).ipv4_to(self.client));
        let expected = TcpSeen {
            src: self.server,
            dst: self.inside,
            ..tcp_of(&sent)
        };
        assert_eq!(
            seen, expected,
            "the server's segment as the client receives it"
        );
        self.server_seq = self.server_seq.wrapping_add(sequence_space(flags, payload));
        seen
    }

    /// A segment from the server, as it arrives at the uplink (to be sent by the test).
    pub fn segment_from_server(&self, flags: u8, payload: &[u8]) -> Vec<u8> {
        segment(
            self.server,
            self.outside,
            self.server_seq,
            self.client_seq,
            flags,
            payload,
        )
    }
}

/// The sequence numbers a segment consumes.
fn sequence_space(flags: u8, payload: &[u8]) -> u32 {
    let control = u32::from(flags & (tcp_flags::SYN | tcp_flags::FIN) != 0);
    payload.len() as u32 + control
}
