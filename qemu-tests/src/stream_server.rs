//! A download that lasts as long as the test wants: an HTTP/1.1 server, run by the test
//! process in a test host's namespace, that answers `GET /stream/<id>` with a chunked body of
//! [`Pattern`] bytes until it is told to finish, and then ends the body properly (the last,
//! empty chunk), so the client sees a complete download whose length the server knows.
//!
//! The content at every offset is known ([`Pattern`]): a client verifies each
//! byte it receives, which catches lost, repeated, reordered or corrupted data as a checksum
//! of the whole would, and says where.

use std::io::{self, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::netns::in_namespace;
use crate::service::Service;
use crate::web_server::read_request_line;
use crate::{Failure, Outcome};

/// Bytes per chunk of the body.
const CHUNK: usize = 64 * 1024;
/// How long one write may block: longer than TCP takes to resume after a minute-long flood
/// has saturated the link (its retransmissions back off up to two minutes apart).
const WRITE_TIMEOUT: Duration = Duration::from_secs(300);
/// The path that streams.
pub const STREAM_PATH: &str = "/stream";

/// The content of the stream: 8-byte words, word `k` a fixed scramble of `k`, so that every
/// aligned word differs from its neighbours and a misplaced one shows.
fn word(index: u64) -> [u8; 8] {
    (index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6d6f_6174_2d73_6f6b).to_le_bytes()
}

/// The stream's content, read or checked from a running offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pattern {
    /// Bytes produced or checked so far.
    pub offset: u64,
}

impl Pattern {
    /// Fills `buffer` with the next bytes of the stream.
    pub fn fill(&mut self, buffer: &mut [u8]) {
        self.walk(buffer.len(), |at, expected| {
            buffer[at..at + expected.len()].copy_from_slice(expected);
            true
        });
    }

    /// Checks that `bytes` are the next bytes of the stream; on a mismatch, returns the
    /// offset of the first wrong byte. The offset advances past `bytes` either way.
    pub fn check(&mut self, bytes: &[u8]) -> Result<(), u64> {
        let start = self.offset;
        let mut wrong = None;
        self.walk(bytes.len(), |at, expected| {
            let got = &bytes[at..at + expected.len()];
            if got == expected {
                return true;
            }
            let first = got.iter().zip(expected).position(|(a, b)| a != b);
            wrong = Some(start + (at + first.unwrap_or_default()) as u64);
            false
        });
        match wrong {
            None => Ok(()),
            Some(offset) => Err(offset),
        }
    }

    /// Advances over `length` bytes, handing `visit` each piece of the stream with its
    /// position in the caller's buffer: whole words where the offset is aligned (fast), single
    /// bytes elsewhere. Stops visiting (but still advances) once `visit` returns false.
    fn walk(&mut self, length: usize, mut visit: impl FnMut(usize, &[u8]) -> bool) {
        let mut at = 0;
        let mut going = true;
        while at < length && going {
            let offset = self.offset + at as u64;
            let within = (offset % 8) as usize;
            let word = word(offset / 8);
            let take = (8 - within).min(length - at);
            going = visit(at, &word[within..within + take]);
            at += take;
        }
        self.offset += length as u64;
    }
}

/// What the server did for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Body bytes sent.
    pub sent: u64,
    /// Whether the body was ended properly (the last chunk went out).
    pub completed: bool,
    /// Why sending stopped early, if it did.
    pub error: Option<String>,
}

/// Which streams are to end, and what the ended ones did; shared with the serving threads.
#[derive(Default)]
struct Streams {
    /// Streams with an id up to this one end after the chunk in flight (ids start at 1).
    finished_through: AtomicU64,
    /// The record of every request served, by stream id.
    records: Mutex<Vec<(u64, StreamRecord)>>,
}

/// The server, serving until dropped. Each download asks for a stream of its own
/// ([`StreamServer::open`]), so that a stream still ending from an earlier download (its
/// client killed while the path was down) never mixes with the next one.
pub struct StreamServer {
    address: SocketAddrV4,
    next_id: AtomicU64,
    streams: Arc<Streams>,
    _service: Service,
}

impl StreamServer {
    /// Starts a server on `address` inside network namespace `namespace`.
    pub fn start(namespace: &str, address: SocketAddrV4) -> Outcome<StreamServer> {
        let listener = in_namespace(namespace, || TcpListener::bind(address))
            .map_err(|failure| Failure::new(format!("stream server on {address}: {failure}")))?;
        StreamServer::serve(listener, address)
    }

    /// Serves on `listener`, which listens on `address`.
    fn serve(listener: TcpListener, address: SocketAddrV4) -> Outcome<StreamServer> {
        let streams = Arc::new(Streams::default());
        let mut service = Service::new();
        let serving = Arc::clone(&streams);
        service
            .accept(listener, move |stream, _peer| {
                let (id, record) = serve(stream, &serving.finished_through);
                serving
                    .records
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push((id, record));
            })
            .map_err(|error| Failure::new(format!("stream server on {address}: {error}")))?;
        Ok(StreamServer {
            address,
            next_id: AtomicU64::new(1),
            streams,
            _service: service,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddrV4 {
        self.address
    }

    /// A new stream: its id, for [`StreamServer::url`], [`StreamServer::finish`] and
    /// [`StreamServer::take_records`].
    pub fn open(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The URL of stream `id`.
    pub fn url(&self, id: u64) -> String {
        format!("http://{}{STREAM_PATH}/{id}", self.address)
    }

    /// Ends stream `id` (and every earlier one) after the chunk in flight.
    pub fn finish(&self, id: u64) {
        self.streams
            .finished_through
            .fetch_max(id, Ordering::Relaxed);
    }

    /// The records of the requests for stream `id`, waiting up to `timeout` for the first (a
    /// handler records its request just after the body's last chunk went out, which the
    /// client may see first).
    pub fn take_records(&self, id: u64, timeout: Duration) -> Vec<StreamRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut records = self
                .streams
                .records
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (mine, others) = std::mem::take(&mut *records)
                .into_iter()
                .partition::<Vec<_>, _>(|(stream, _)| *stream == id);
            *records = others;
            if !mine.is_empty() || Instant::now() >= deadline {
                return mine.into_iter().map(|(_, record)| record).collect();
            }
            drop(records);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Serves one request; returns the stream id it asked for (0 if none) and what was sent.
fn serve(stream: TcpStream, finished_through: &AtomicU64) -> (u64, StreamRecord) {
    let mut record = StreamRecord {
        sent: 0,
        completed: false,
        error: None,
    };
    let mut id = 0;
    let streamed = stream
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .and_then(|()| stream_body(stream, finished_through, &mut id, &mut record));
    if let Err(error) = streamed {
        record.error = Some(error.to_string());
    }
    (id, record)
}

fn stream_body(
    stream: TcpStream,
    finished_through: &AtomicU64,
    id: &mut u64,
    record: &mut StreamRecord,
) -> io::Result<()> {
    let request_line = read_request_line(&stream)?;
    let mut writer = stream;
    let words: Vec<&str> = request_line.split_whitespace().collect();
    let requested = match words.as_slice() {
        ["GET", path, "HTTP/1.1"] => path
            .strip_prefix(STREAM_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|number| number.parse::<u64>().ok())
            .filter(|number| *number > 0),
        _ => None,
    };
    let Some(requested) = requested else {
        writer.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a stream request: {:?}", request_line.trim()),
        ));
    };
    *id = requested;
    writer.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )?;
    let mut pattern = Pattern::default();
    let mut chunk = vec![0u8; CHUNK];
    let head = format!("{CHUNK:x}\r\n");
    while finished_through.load(Ordering::Relaxed) < requested {
        pattern.fill(&mut chunk);
        writer.write_all(head.as_bytes())?;
        writer.write_all(&chunk)?;
        writer.write_all(b"\r\n")?;
        record.sent += CHUNK as u64;
    }
    writer.write_all(b"0\r\n\r\n")?;
    writer.flush()?;
    record.completed = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_pattern_checks_what_it_filled_and_finds_a_wrong_byte() {
        let mut source = Pattern::default();
        let mut bytes = vec![0; 1000];
        source.fill(&mut bytes);
        let mut checker = Pattern::default();
        assert_eq!(checker.check(&bytes[..300]), Ok(()));
        assert_eq!(checker.check(&bytes[300..]), Ok(()));
        bytes[517] ^= 1;
        assert_eq!(Pattern::default().check(&bytes), Err(517));
        // A repeated or skipped word is a mismatch too.
        let mut shifted = bytes[8..].to_vec();
        shifted.truncate(64);
        assert!(Pattern::default().check(&shifted).is_err());
    }

    /// Requests stream `id` and reads the response head.
    fn request(server: &StreamServer, id: u64) -> TcpStream {
        let mut client = TcpStream::connect(server.address()).unwrap();
        write!(client, "GET {STREAM_PATH}/{id} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = [0u8; 512];
        let read = client.read(&mut head).unwrap();
        assert!(head[..read].starts_with(b"HTTP/1.1 200 OK\r\n"));
        client
    }

    #[test]
    fn each_stream_ends_properly_when_finished_and_is_recorded_apart() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(address) = listener.local_addr().unwrap() else {
            panic!("not an IPv4 address")
        };
        let server = StreamServer::serve(listener, address).unwrap();
        let (first, second) = (server.open(), server.open());
        let mut first_client = request(&server, first);
        let mut second_client = request(&server, second);
        server.finish(first);
        let mut rest = Vec::new();
        first_client.read_to_end(&mut rest).unwrap();
        assert!(rest.ends_with(b"0\r\n\r\n"));
        let records = server.take_records(first, Duration::from_secs(10));
        assert_eq!(records.len(), 1, "{records:?}");
        assert!(records[0].completed, "{records:?}");
        assert_eq!(records[0].sent % CHUNK as u64, 0);
        // The second stream is still going, and nothing of it was taken with the first.
        let mut more = [0u8; 4096];
        assert!(second_client.read(&mut more).unwrap() > 0);
        server.finish(second);
        let mut rest = Vec::new();
        second_client.read_to_end(&mut rest).unwrap();
        assert!(rest.ends_with(b"0\r\n\r\n"));
        assert_eq!(
            server.take_records(second, Duration::from_secs(10)).len(),
            1
        );
    }
}
