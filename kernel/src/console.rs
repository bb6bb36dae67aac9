//! The serial console (COM1, 115200 8N1) and the `log` facade on top of it.
//!
//! Every line the appliance prints starts with `moat: ` — the harness and users grep for
//! these. `info` records print as `moat: <message>`, `warn` as `moat: warning: <message>`,
//! `error` as `moat: error: <message>`. Records from other crates (drivers) are shown from
//! `warn` up; `moat.log=debug` on the command line shows everything.
//!
//! Lines go through a [`ConsoleQueue`] and reach the UART only as fast as it takes them,
//! never waiting for it: a console whose reader stops reading (a paused `virsh console`, a
//! hung socket reader, a full pipe) must not stop the appliance. While booting, [`print`]
//! hands each line to the UART at once; once the main loop runs, it only queues, and the
//! loop [`pump`]s a bounded number of bytes a round, so a burst of lines (the stats
//! report) holds packets up no longer than that. A line the full queue has no room for
//! waits while the UART takes what it takes without waiting; if that frees no room (the
//! console is not read), the line is lost whole and counted, and a warning in its place
//! says how many.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use dataplane::console_queue::ConsoleQueue;
use log::{Level, LevelFilter, Log, Metadata, Record};
use uart_16550::{backend::PioBackend, Config, Uart16550Tty};
use x86_64::instructions::port::Port;

use crate::interrupts::{without_interrupts, MainLock};
use crate::time;

/// I/O port base of COM1.
const COM1: u16 = 0x3f8;
/// The UART's transmit FIFO.
const FIFO_BYTES: usize = 16;
/// Console output held while the UART does not take it: a few seconds of the busiest
/// drop log. (A longer burst — a stats report for a large ruleset — goes out as fast as
/// the UART takes it once the queue is full; only a console that is not read loses lines.)
const QUEUE_BYTES: usize = 16 * 1024;

/// The UART and the lines waiting for it.
struct Console {
    uart: Option<Uart16550Tty<PioBackend>>,
    queue: ConsoleQueue<QUEUE_BYTES>,
    /// Whether lines wait for [`pump`] (the main loop runs) rather than going out at once.
    deferred: bool,
}

impl Console {
    /// Hands at most `max` waiting bytes to the UART, as many as it takes without waiting,
    /// and then the warning about lines lost, if there is room for it now; returns how many
    /// bytes the UART took.
    fn send(&mut self, max: usize) -> usize {
        let sent = send(&mut self.uart, &mut self.queue, max);
        self.queue.report_lost();
        sent
    }
}

/// Hands at most `max` of `queue`'s bytes to `uart`, as many as it takes without waiting,
/// a FIFO's worth each time it says its FIFO is empty (one status read per 16 bytes: each
/// register access is a VM exit, an I/O helper under TCG); returns how many it took.
fn send(
    uart: &mut Option<Uart16550Tty<PioBackend>>,
    queue: &mut ConsoleQueue<QUEUE_BYTES>,
    max: usize,
) -> usize {
    let Some(uart) = uart.as_mut() else {
        return 0;
    };
    let port = uart.inner_mut();
    queue.drain(max, |bytes| {
        let mut sent = 0;
        while sent < bytes.len() {
            let n = port.send_bytes(&bytes[sent..]);
            if n == 0 {
                break;
            }
            sent += n;
        }
        sent
    })
}

/// The console. Taken only outside interrupt context (a [`MainLock`]): exceptions and
/// panics print through [`EmergencyWriter`] instead, which only tries it.
static CONSOLE: MainLock<Console> = MainLock::new(
    "the console",
    Console {
        uart: None,
        queue: ConsoleQueue::new(),
        deferred: false,
    },
);
static LOGGER: ConsoleLogger = ConsoleLogger;

/// Initialises COM1 and installs the logger. Safe to call once, first thing at boot.
pub fn init(verbose: bool) {
    // SAFETY: COM1's eight I/O ports belong to the console for the kernel's whole life and
    // nothing else in the kernel touches them (the emergency writer only writes THR/LSR when
    // the kernel is already stopping).
    let uart = unsafe { Uart16550Tty::new_port(COM1, Config::default()) };
    CONSOLE.lock().uart = uart.ok();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if verbose {
        LevelFilter::Trace
    } else {
        LevelFilter::Info
    });
}

/// Raises the log level (after the command line is parsed).
pub fn set_verbose(verbose: bool) {
    log::set_max_level(if verbose {
        LevelFilter::Trace
    } else {
        LevelFilter::Info
    });
}

/// Queues formatted text for the console (no prefix; lines should start with `moat: `) and,
/// until [`defer_to_main_loop`], sends what the UART takes at once.
pub fn print(args: fmt::Arguments) {
    // With interrupts off, so that a line goes in whole.
    without_interrupts(|_| {
        let mut console = CONSOLE.lock();
        if console.uart.is_none() {
            drop(console);
            let _ = EmergencyWriter.write_fmt(args);
            return;
        }
        // A line with no room waits for nothing: it goes in once the UART has taken about
        // as much as the line needs (a FIFO at a time, without waiting), or it is lost
        // (and counted).
        let Console { uart, queue, .. } = &mut *console;
        queue.push_making_room(args, |queue| send(uart, queue, FIFO_BYTES));
        if !console.deferred {
            console.send(usize::MAX);
        }
    });
}

/// From now on [`print`] only queues: the main loop sends with [`pump`].
pub fn defer_to_main_loop() {
    without_interrupts(|_| CONSOLE.lock().deferred = true);
}

/// What [`pump`] left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pumped {
    /// Nothing waits.
    Empty,
    /// The UART took bytes and more wait: pump again soon.
    Moving,
    /// Bytes wait and the UART took none (its reader is not reading): try again later.
    Blocked,
}

/// Sends at most `max` waiting bytes, as many as the UART takes without waiting.
pub fn pump(max: usize) -> Pumped {
    without_interrupts(|_| {
        let mut console = CONSOLE.lock();
        let sent = console.send(max);
        match (console.queue.pending(), sent) {
            (0, _) => Pumped::Empty,
            (_, 0) => Pumped::Blocked,
            _ => Pumped::Moving,
        }
    })
}

/// Sends what waits, for at most `micros` (before the appliance powers off).
pub fn flush(micros: u64) {
    let deadline = time::now_micros() + micros;
    while pump(usize::MAX) != Pumped::Empty && time::now_micros() < deadline {
        core::hint::spin_loop();
    }
}

/// Prints one console line: `println!("moat: ready")`.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Set once the emergency writer gave up waiting for the UART: it then writes without
/// waiting, so a console nobody reads cannot hold up the fatal path byte after byte.
static EMERGENCY_GAVE_UP: AtomicBool = AtomicBool::new(false);

/// A writer straight to COM1 for the fatal path, which needs no lock: it works even if
/// the code that faulted holds the console. It first sends the lines still queued, if the
/// console is free to take.
pub struct EmergencyWriter;

impl EmergencyWriter {
    /// Sends the console's queued lines the way [`EmergencyWriter`] sends bytes (for the
    /// fatal report, so that it follows what the appliance printed before it).
    pub fn send_queued() {
        if let Some(mut console) = CONSOLE.try_lock_when_stopping() {
            console.queue.drain(usize::MAX, |bytes| {
                for &byte in bytes {
                    Self::write_byte(byte);
                }
                bytes.len()
            });
        }
    }

    fn write_byte(byte: u8) {
        let mut line_status: Port<u8> = Port::new(COM1 + 5);
        let mut data: Port<u8> = Port::new(COM1);
        // SAFETY: reading LSR and writing THR of COM1 has no effect beyond sending a byte.
        unsafe {
            let mut spins = 0u32;
            while !EMERGENCY_GAVE_UP.load(Ordering::Relaxed) && line_status.read() & 0x20 == 0 {
                spins += 1;
                if spins == 100_000 {
                    EMERGENCY_GAVE_UP.store(true, Ordering::Relaxed);
                }
            }
            data.write(byte);
        }
    }
}

impl Write for EmergencyWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                Self::write_byte(b'\r');
            }
            Self::write_byte(byte);
        }
        Ok(())
    }
}

struct ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let ours =
            metadata.target().starts_with("moat") || metadata.target().starts_with("dataplane");
        metadata.level() <= log::max_level()
            && (ours || metadata.level() <= Level::Warn || log::max_level() >= LevelFilter::Debug)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        match record.level() {
            Level::Error => print(format_args!("moat: error: {}\n", record.args())),
            Level::Warn => print(format_args!("moat: warning: {}\n", record.args())),
            Level::Info => print(format_args!("moat: {}\n", record.args())),
            Level::Debug | Level::Trace => print(format_args!(
                "moat: debug: [{}] {}\n",
                record.target(),
                record.args()
            )),
        }
    }

    fn flush(&self) {}
}
