//! New TCP connections per second through a firewall: a [`ConnectionSink`] in the server's
//! namespace accepts and closes connections; [`measure`] opens them from a client's
//! namespace on several threads, as fast as they complete, for a fixed time. Each
//! connection is a full handshake (so the firewall's rules are consulted and a state is
//! created for it) followed by a reset from the client (`SO_LINGER` 0), so that neither the
//! client's ports nor the firewall's table fill with connections in `TIME_WAIT`. Bounded in
//! time, to a test host's own address.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::netns::in_namespace;
use crate::service::Service;
use crate::{Failure, Outcome};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed attempt, so a refusing path is not hammered in a tight loop.
const FAILURE_PAUSE: Duration = Duration::from_millis(10);
/// How often the sink's accept loop looks again when no connection waits.
const ACCEPT_POLL: Duration = Duration::from_millis(1);

/// A server that accepts connections and closes them at once, until dropped.
pub struct ConnectionSink {
    _service: Service,
}

impl ConnectionSink {
    /// Listens on `address` inside network namespace `namespace`.
    pub fn start(namespace: &str, address: SocketAddrV4) -> Outcome<ConnectionSink> {
        let listener = in_namespace(namespace, || {
            let listener = TcpListener::bind(address)?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .map_err(|failure| Failure::new(format!("connection sink on {address}: {failure}")))?;
        let mut service = Service::new();
        service.spawn(move |stop| {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => drop(stream),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(ACCEPT_POLL)
                    }
                    Err(_) => std::thread::sleep(ACCEPT_POLL),
                }
            }
        });
        Ok(ConnectionSink { _service: service })
    }
}

/// What a measurement counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionRate {
    /// Connections that completed their handshake.
    pub completed: u64,
    /// Attempts that failed or timed out.
    pub failed: u64,
    /// Over how long.
    pub elapsed: Duration,
}

impl ConnectionRate {
    /// Completed connections per second.
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Opens connections to `server` from namespace `namespace` on `workers` threads for
/// `duration`.
pub fn measure(
    namespace: &str,
    server: SocketAddr,
    workers: usize,
    duration: Duration,
) -> Outcome<ConnectionRate> {
    let started = Instant::now();
    let deadline = started + duration;
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(move || in_namespace(namespace, || Ok(connect_until(server, deadline))))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| Failure::new("a connection-rate worker panicked"))?
            })
            .collect::<Outcome<Vec<(u64, u64)>>>()
    })?;
    Ok(ConnectionRate {
        completed: counts.iter().map(|(completed, _)| completed).sum(),
        failed: counts.iter().map(|(_, failed)| failed).sum(),
        elapsed: started.elapsed(),
    })
}

/// Connects and resets until `deadline`: (completed, failed).
fn connect_until(server: SocketAddr, deadline: Instant) -> (u64, u64) {
    let (mut completed, mut failed) = (0, 0);
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&server, CONNECT_TIMEOUT) {
            Ok(stream) => {
                reset_on_close(&stream);
                completed += 1;
            }
            Err(_) => {
                failed += 1;
                std::thread::sleep(FAILURE_PAUSE);
            }
        }
    }
    (completed, failed)
}

/// Makes closing `stream` send a reset (`SO_LINGER` with a zero timeout).
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) reads `size_of::<linger>()` bytes from a live `linger` value for
    // an open socket descriptor that `stream` owns for the whole call.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
