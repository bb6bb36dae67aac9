//! The life cycle of the in-process servers: threads that serve sockets until the
//! [`Service`] is dropped. Sockets are polled (non-blocking accepts, short read timeouts) so
//! that a stop request is seen within [`POLL_INTERVAL`] and dropping a service never hangs.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a serving thread checks whether it should stop.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Longest a connection may sit idle before its handler gives up on it.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Threads serving until dropped.
pub struct Service {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Service {
    /// A service with no threads yet.
    pub fn new() -> Service {
        Service {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }

    /// The flag the service's threads poll: set when the service is dropped.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Runs `serve` on a thread of the service; it must return soon after the stop flag is
    /// set.
    pub fn spawn(&mut self, serve: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let stop = self.stop_flag();
        self.threads.push(std::thread::spawn(move || serve(stop)));
    }

    /// Accepts connections on `listener` until stopped, handing each to `handle` on a thread
    /// of its own (blocking, with read and write timeouts).
    pub fn accept(
        &mut self,
        listener: TcpListener,
        handle: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    ) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let handle = Arc::new(handle);
        self.spawn(move |stop| {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let handle = Arc::clone(&handle);
                        std::thread::spawn(move || {
                            let ready = stream
                                .set_nonblocking(false)
                                .and_then(|()| stream.set_read_timeout(Some(CONNECTION_TIMEOUT)))
                                .and_then(|()| stream.set_write_timeout(Some(CONNECTION_TIMEOUT)));
                            if ready.is_ok() {
                                handle(stream, peer);
                            }
                        });
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(POLL_INTERVAL)
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    // A connection reset before it was accepted, or out of descriptors for a
                    // moment: keep serving.
                    Err(_) => std::thread::sleep(POLL_INTERVAL),
                }
            }
        });
        Ok(())
    }
}

impl Default for Service {
    fn default() -> Service {
        Service::new()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
