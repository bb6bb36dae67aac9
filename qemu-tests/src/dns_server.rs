//! A tiny authoritative DNS server (UDP and TCP, RFC 1035) run by the test process inside a
//! test host's namespace: the upstream resolver that the appliance's DNS redirect sends
//! clients' queries to. It answers `A` queries for the names of its zone, NXDOMAIN for other
//! names, and remembers every query with the address it came from, so a test can see that
//! the query arrived through the appliance (masqueraded) and over which transport.
//!
//! Untrusted input is parsed with bounds checks only: a malformed query is ignored, never a
//! panic.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::netns::in_namespace;
use crate::service::{Service, POLL_INTERVAL};
use crate::{Failure, Outcome};

/// TTL of every answer, in seconds.
const ANSWER_TTL: u32 = 60;
/// Largest DNS message read over UDP or TCP.
const MAX_MESSAGE: usize = 4096;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u16 = 3;
const RCODE_NOTIMP: u16 = 4;

/// How a query reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    /// Over UDP.
    Udp,
    /// Over TCP (length-prefixed).
    Tcp,
}

/// A query the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenQuery {
    /// Where it came from.
    pub peer: SocketAddr,
    /// The name asked for, lower case, without the final dot.
    pub name: String,
    /// Over which transport.
    pub transport: DnsTransport,
}

/// The names a server knows: `(name, address)`.
pub type Zone = Vec<(String, Ipv4Addr)>;

/// A DNS server, serving until dropped.
pub struct DnsServer {
    queries: Arc<Mutex<Vec<SeenQuery>>>,
    _service: Service,
}

impl DnsServer {
    /// Starts serving `zone` on `address` (IPv4 or IPv6; UDP and TCP) inside network
    /// namespace `namespace`.
    pub fn start(
        namespace: &str,
        address: impl Into<SocketAddr>,
        zone: Zone,
    ) -> Outcome<DnsServer> {
        let address = address.into();
        let (udp, tcp) = in_namespace(namespace, || {
            let udp = UdpSocket::bind(address)?;
            udp.set_read_timeout(Some(POLL_INTERVAL))?;
            Ok((udp, TcpListener::bind(address)?))
        })
        .map_err(|failure| Failure::new(format!("DNS server on {address}: {failure}")))?;
        let zone = Arc::new(zone);
        let queries = Arc::new(Mutex::new(Vec::new()));
        let mut service = Service::new();
        let (udp_zone, udp_queries) = (Arc::clone(&zone), Arc::clone(&queries));
        service.spawn(move |stop| {
            let mut buffer = [0u8; MAX_MESSAGE];
            while !stop.load(Ordering::Relaxed) {
                let Ok((length, peer)) = udp.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some(reply) = handle(
                    &buffer[..length],
                    peer,
                    DnsTransport::Udp,
                    &udp_zone,
                    &udp_queries,
                ) {
                    let _ = udp.send_to(&reply, peer);
                }
            }
        });
        let tcp_queries = Arc::clone(&queries);
        service
            .accept(tcp, move |mut stream, peer| {
                // RFC 1035 4.2.2: each message is preceded by its two-byte length.
                let mut length = [0u8; 2];
                while stream.read_exact(&mut length).is_ok() {
                    let length = usize::from(u16::from_be_bytes(length));
                    let mut query = vec![0u8; length.min(MAX_MESSAGE)];
                    if length > MAX_MESSAGE || stream.read_exact(&mut query).is_err() {
                        return;
                    }
                    let Some(reply) = handle(&query, peer, DnsTransport::Tcp, &zone, &tcp_queries)
                    else {
                        return;
                    };
                    let framed = [&(reply.len() as u16).to_be_bytes()[..], &reply].concat();
                    if stream.write_all(&framed).is_err() {
                        return;
                    }
                }
            })
            .map_err(|error| Failure::new(format!("DNS server on {address}: {error}")))?;
        Ok(DnsServer {
            queries,
            _service: service,
        })
    }

    /// Every query answered so far, in order.
    pub fn queries(&self) -> Vec<SeenQuery> {
        self.queries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

fn handle(
    query: &[u8],
    peer: SocketAddr,
    transport: DnsTransport,
    zone: &Zone,
    seen: &Mutex<Vec<SeenQuery>>,
) -> Option<Vec<u8>> {
    let (name, reply) = answer(query, zone)?;
    seen.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(SeenQuery {
            peer,
            name,
            transport,
        });
    Some(reply)
}

/// The question of a query: the name (lower case, no final dot), its wire form, type and
/// class.
struct Question<'a> {
    name: String,
    wire: &'a [u8],
    kind: u16,
    class: u16,
}

/// Reads the single question of a standard query; `None` for anything else.
fn question(query: &[u8]) -> Option<Question<'_>> {
    let header = query.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let is_response = flags & 0x8000 != 0;
    let question_count = u16::from_be_bytes([header[4], header[5]]);
    if is_response || question_count != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        // No compression in a question; labels of at most 63 bytes, names of at most 255.
        if length > 63 || at + length > query.len() || at > 12 + 255 {
            return None;
        }
        labels.push(String::from_utf8_lossy(&query[at..at + length]).to_ascii_lowercase());
        at += length;
    }
    let fixed = query.get(at..at + 4)?;
    Some(Question {
        name: labels.join("."),
        wire: &query[12..at],
        kind: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
    })
}

/// The reply to `query` from `zone`, and the name asked for; `None` if `query` is not a
/// standard query with one question (it is then ignored, as servers do with garbage).
pub fn answer(query: &[u8], zone: &Zone) -> Option<(String, Vec<u8>)> {
    let question = question(query)?;
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let opcode = (flags >> 11) & 0xf;
    let known = zone.iter().find(|(name, _)| {
        name.trim_end_matches('.')
            .eq_ignore_ascii_case(&question.name)
    });
    let (rcode, address) = match known {
        _ if opcode != 0 => (RCODE_NOTIMP, None),
        None => (RCODE_NXDOMAIN, None),
        Some((_, address)) if question.kind == TYPE_A && question.class == CLASS_IN => {
            (0, Some(*address))
        }
        // The name exists, without data of that type: NOERROR, no answer.
        Some(_) => (0, None),
    };
    // QR, the opcode and RD copied, AA, RA.
    let reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode;
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[..2]);
    reply.extend_from_slice(&reply_flags.to_be_bytes());
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&u16::from(address.is_some()).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question.wire);
    reply.extend_from_slice(&question.kind.to_be_bytes());
    reply.extend_from_slice(&question.class.to_be_bytes());
    if let Some(address) = address {
        reply.extend_from_slice(&0xc00cu16.to_be_bytes()); // the name: a pointer to the question's
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&ANSWER_TTL.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&address.octets());
    }
    Some((question.name, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query as `dig` sends it: RD set, one question, an EDNS OPT record.
    fn query(name: &str, kind: u16) -> Vec<u8> {
        let mut bytes = vec![0xab, 0xcd, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in name.split('.') {
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label.as_bytes());
        }
        bytes.push(0);
        bytes.extend_from_slice(&kind.to_be_bytes());
        bytes.extend_from_slice(&CLASS_IN.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    fn zone() -> Zone {
        vec![("www.moat.test".into(), Ipv4Addr::new(198, 51, 100, 80))]
    }

    #[test]
    fn a_known_name_gets_its_address_with_the_query_id_and_question() {
        let (name, reply) = answer(&query("WWW.Moat.test", TYPE_A), &zone()).unwrap();
        assert_eq!(name, "www.moat.test");
        assert_eq!(&reply[..2], &[0xab, 0xcd]);
        let flags = u16::from_be_bytes([reply[2], reply[3]]);
        assert_eq!(flags & 0x8000, 0x8000, "QR");
        assert_eq!(flags & 0x0100, 0x0100, "RD copied");
        assert_eq!(flags & 0x000f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 1, "one answer");
        assert_eq!(&reply[reply.len() - 4..], &[198, 51, 100, 80]);
    }

    #[test]
    fn unknown_names_are_nxdomain_and_other_types_of_known_names_have_no_answer() {
        let (_, reply) = answer(&query("nowhere.moat.test", TYPE_A), &zone()).unwrap();
        assert_eq!(
            u16::from_be_bytes([reply[2], reply[3]]) & 0xf,
            RCODE_NXDOMAIN
        );
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0);
        let (_, reply) = answer(&query("www.moat.test", 28), &zone()).unwrap();
        assert_eq!(u16::from_be_bytes([reply[2], reply[3]]) & 0xf, 0);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0);
    }

    #[test]
    fn garbage_and_responses_are_ignored_without_panicking() {
        let good = query("www.moat.test", TYPE_A);
        for length in 0..good.len() - 11 {
            let _ = answer(&good[..length], &zone());
        }
        let mut response = good.clone();
        response[2] |= 0x80;
        assert!(answer(&response, &zone()).is_none());
        let mut long_label = good.clone();
        long_label[12] = 64;
        assert!(answer(&long_label, &zone()).is_none());
    }
}
