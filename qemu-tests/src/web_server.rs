//! A tiny HTTP/1.0 server run by the test process inside a test host's namespace: it says
//! who it is and who is asking, so a test sees through which addresses a request travelled
//! (masqueraded or not, forwarded to which client).
//!
//! - `GET /` answers `server <name> peer <address>:<port>\n` (see [`Greeting`]);
//! - `GET /bytes/<n>` answers `n` bytes (at most [`MAX_BODY`]), for transfers that take a
//!   while;
//! - `GET /pattern/<n>` answers the first `n` bytes of [`pattern`] (at most [`MAX_BODY`]),
//!   a pseudo-random stream in which a byte lost, repeated or out of place shows;
//! - anything else gets `404` or `400`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use dataplane::rng::SplitMix64;

use crate::netns::in_namespace;
use crate::service::Service;
use crate::{Failure, Outcome};

/// Largest body `/bytes/<n>` serves.
pub const MAX_BODY: u64 = 1 << 30;
/// Seed of [`pattern`]'s stream.
const PATTERN_SEED: u64 = 0x6d6f_6174_0000_0010;

/// The pattern stream `/pattern/<n>` serves: 8 bytes of a seeded SplitMix64 at a time.
pub struct Pattern(SplitMix64);

impl Pattern {
    /// The stream from its start.
    pub fn new() -> Pattern {
        Pattern(SplitMix64::new(PATTERN_SEED))
    }

    /// Fills `out` with the next bytes of the stream (`out`'s length a multiple of 8 but
    /// for the stream's last piece).
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

impl Default for Pattern {
    fn default() -> Pattern {
        Pattern::new()
    }
}

/// The first `len` bytes of the pattern stream.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    Pattern::new().fill(&mut bytes);
    bytes
}

/// Longest request head read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// A web server, serving until dropped.
pub struct WebServer {
    address: SocketAddr,
    _service: Service,
}

impl WebServer {
    /// Starts a server named `name` on `address` (IPv4 or IPv6) inside network namespace
    /// `namespace`.
    pub fn start(
        namespace: &str,
        address: impl Into<SocketAddr>,
        name: &str,
    ) -> Outcome<WebServer> {
        let address = address.into();
        let listener =
            in_namespace(namespace, || TcpListener::bind(address)).map_err(|failure| {
                Failure::new(format!("web server {name} on {address}: {failure}"))
            })?;
        let mut service = Service::new();
        let name = name.to_string();
        service
            .accept(listener, move |stream, peer| {
                let _ = serve(stream, peer, &name);
            })
            .map_err(|error| Failure::new(format!("web server on {address}: {error}")))?;
        Ok(WebServer {
            address,
            _service: service,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// What `GET /` answers: the server's name and the peer it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The server's name.
    pub server: String,
    /// The address and port the request came from, as the server saw them.
    pub peer: SocketAddr,
}

impl Greeting {
    /// Parses `server <name> peer <address>:<port>`.
    pub fn parse(body: &str) -> Option<Greeting> {
        let words: Vec<&str> = body.split_whitespace().collect();
        let ["server", server, "peer", peer] = words.as_slice() else {
            return None;
        };
        Some(Greeting {
            server: server.to_string(),
            peer: peer.parse().ok()?,
        })
    }

    fn render(&self) -> String {
        format!("server {} peer {}\n", self.server, self.peer)
    }
}

/// The response to one request line (`GET /path HTTP/1.x`). A byte body is only a length:
/// it is written in chunks, never held in memory.
#[derive(Debug, PartialEq, Eq)]
enum Response {
    Greeting(String),
    Bytes(u64),
    Pattern(u64),
    NotFound,
    BadRequest,
}

fn route(request_line: &str, name: &str, peer: SocketAddr) -> Response {
    let words: Vec<&str> = request_line.split_whitespace().collect();
    let ["GET", path, version] = words.as_slice() else {
        return Response::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Response::BadRequest;
    }
    if *path == "/" {
        return Response::Greeting(
            Greeting {
                server: name.to_string(),
                peer,
            }
            .render(),
        );
    }
    if let Some(length) = path.strip_prefix("/pattern/") {
        return match length.parse::<u64>() {
            Ok(length) if length <= MAX_BODY => Response::Pattern(length),
            _ => Response::BadRequest,
        };
    }
    match path.strip_prefix("/bytes/").map(str::parse::<u64>) {
        Some(Ok(length)) if length <= MAX_BODY => Response::Bytes(length),
        Some(_) => Response::BadRequest,
        None => Response::NotFound,
    }
}

/// Reads an HTTP request's head from `stream` (at most [`MAX_REQUEST_HEAD`] bytes) and
/// returns its request line; the headers are skipped.
pub fn read_request_line(stream: &TcpStream) -> io::Result<String> {
    let mut reader = BufReader::new(stream.try_clone()?).take(MAX_REQUEST_HEAD as u64);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers, up to the empty line.
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    Ok(request_line)
}

fn serve(stream: TcpStream, peer: SocketAddr, name: &str) -> io::Result<()> {
    let request_line = read_request_line(&stream)?;
    let mut writer = stream;
    match route(&request_line, name, peer) {
        Response::Greeting(body) => respond(&mut writer, "200 OK", body.as_bytes()),
        Response::Bytes(length) => {
            let chunk = [b'm'; 64 * 1024];
            respond_with_stream(&mut writer, length, |out| {
                out.copy_from_slice(&chunk[..out.len()])
            })
        }
        Response::Pattern(length) => {
            let mut stream = Pattern::new();
            respond_with_stream(&mut writer, length, |out| stream.fill(out))
        }
        Response::NotFound => respond(&mut writer, "404 Not Found", b"not found\n"),
        Response::BadRequest => respond(&mut writer, "400 Bad Request", b"bad request\n"),
    }
}

/// Answers `length` bytes, written in 64 KiB chunks that `next` fills in turn.
fn respond_with_stream(
    writer: &mut TcpStream,
    length: u64,
    mut next: impl FnMut(&mut [u8]),
) -> io::Result<()> {
    write!(
        writer,
        "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )?;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut left = length;
    while left > 0 {
        let now = left.min(chunk.len() as u64) as usize;
        next(&mut chunk[..now]);
        writer.write_all(&chunk[..now])?;
        left -= now as u64;
    }
    writer.flush()
}

fn respond(writer: &mut TcpStream, status: &str, body: &[u8]) -> io::Result<()> {
    write!(
        writer,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    writer.write_all(body)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "10.0.2.15:40000".parse().unwrap()
    }

    #[test]
    fn the_greeting_names_the_server_and_the_peer_and_parses_back() {
        let Response::Greeting(body) = route("GET / HTTP/1.1\r\n", "internet", peer()) else {
            panic!("not a greeting")
        };
        assert_eq!(body, "server internet peer 10.0.2.15:40000\n");
        assert_eq!(
            Greeting::parse(&body),
            Some(Greeting {
                server: "internet".into(),
                peer: peer()
            })
        );
        assert_eq!(Greeting::parse("hello"), None);
    }

    #[test]
    fn the_pattern_is_the_same_stream_however_it_is_cut() {
        let whole = pattern(100_000);
        let mut pieces = Pattern::new();
        let mut again = vec![0u8; 100_000];
        for chunk in again.chunks_mut(64 * 1024) {
            pieces.fill(chunk);
        }
        assert_eq!(whole, again);
        assert_ne!(whole[..8], whole[8..16], "not a repeating pattern");
        assert_eq!(
            route("GET /pattern/5000 HTTP/1.0", "x", peer()),
            Response::Pattern(5000)
        );
        assert_eq!(
            route("GET /pattern/x HTTP/1.0", "x", peer()),
            Response::BadRequest
        );
    }

    #[test]
    fn byte_bodies_are_bounded_and_other_requests_refused() {
        assert_eq!(
            route("GET /bytes/1000 HTTP/1.0", "x", peer()),
            Response::Bytes(1000)
        );
        assert_eq!(
            route(
                &format!("GET /bytes/{} HTTP/1.0", MAX_BODY + 1),
                "x",
                peer()
            ),
            Response::BadRequest
        );
        assert_eq!(
            route("GET /bytes/-1 HTTP/1.0", "x", peer()),
            Response::BadRequest
        );
        assert_eq!(
            route("GET /other HTTP/1.0", "x", peer()),
            Response::NotFound
        );
        assert_eq!(route("POST / HTTP/1.0", "x", peer()), Response::BadRequest);
        assert_eq!(route("", "x", peer()), Response::BadRequest);
    }

    #[test]
    fn a_real_request_over_loopback_gets_the_greeting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut service = Service::new();
        service
            .accept(listener, |stream, peer| {
                let _ = serve(stream, peer, "loopback");
            })
            .unwrap();
        let mut client = TcpStream::connect(address).unwrap();
        client
            .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut client, &mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap();
        let greeting = Greeting::parse(body).unwrap();
        assert_eq!(greeting.server, "loopback");
        assert_eq!(greeting.peer, client.local_addr().unwrap());
    }
}
