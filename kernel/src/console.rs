//! The serial console (COM1, 115200 8N1) and the `log` facade on top of it.
//!
//! Every line the appliance prints starts with `moat: ` — the harness and users grep for
//! these. `info` records print as `moat: <message>`, `warn` as `moat: warning: <message>`,
//! `error` as `moat: error: <message>`. Records from other crates (drivers) are shown from
//! `warn` up; `moat.log=debug` on the command line shows everything.

use core::fmt::{self, Write};

use log::{Level, LevelFilter, Log, Metadata, Record};
use uart_16550::{backend::PioBackend, Config, Uart16550Tty};
use x86_64::instructions::port::Port;

use crate::interrupts::{without_interrupts, MainLock};

/// I/O port base of COM1.
const COM1: u16 = 0x3f8;

/// The UART. Taken only outside interrupt context (a [`MainLock`]): exceptions and panics
/// print through [`EmergencyWriter`] instead, which takes no lock.
static CONSOLE: MainLock<Option<Uart16550Tty<PioBackend>>> = MainLock::new("the console", None);
static LOGGER: ConsoleLogger = ConsoleLogger;

/// Initialises COM1 and installs the logger. Safe to call once, first thing at boot.
pub fn init(verbose: bool) {
    // SAFETY: COM1's eight I/O ports belong to the console for the kernel's whole life and
    // nothing else in the kernel touches them (the emergency writer only writes THR/LSR when
    // the kernel is already stopping).
    let uart = unsafe { Uart16550Tty::new_port(COM1, Config::default()) };
    *CONSOLE.lock() = uart.ok();
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

/// Writes formatted text to the console (no prefix). Lines should start with `moat: `.
pub fn print(args: fmt::Arguments) {
    // With interrupts off, so that a line is written in one piece.
    without_interrupts(|_| {
        if let Some(uart) = CONSOLE.lock().as_mut() {
            let _ = FifoWriter(uart).write_fmt(args);
        } else {
            let _ = EmergencyWriter.write_fmt(args);
        }
    });
}

/// Prints one console line: `println!("moat: ready")`.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes text to the UART a transmit FIFO at a time: the line status is read once per
/// 16 bytes rather than once per byte (`Uart16550Tty`'s own `Write` sends each byte on
/// its own). Each register access is a VM exit (an I/O helper under TCG): the boot's
/// console lines cost half as many. Newlines go out as CR LF.
struct FifoWriter<'a>(&'a mut Uart16550Tty<PioBackend>);

impl Write for FifoWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let uart = self.0.inner_mut();
        let mut lines = s.split('\n');
        if let Some(first) = lines.next() {
            uart.send_bytes_exact(first.as_bytes());
        }
        for line in lines {
            uart.send_bytes_exact(b"\r\n");
            uart.send_bytes_exact(line.as_bytes());
        }
        Ok(())
    }
}

/// A lock-free writer straight to COM1, for the fatal path: it works even if the console
/// lock is held by the code that faulted.
pub struct EmergencyWriter;

impl EmergencyWriter {
    fn write_byte(byte: u8) {
        let mut line_status: Port<u8> = Port::new(COM1 + 5);
        let mut data: Port<u8> = Port::new(COM1);
        // SAFETY: reading LSR and writing THR of COM1 has no effect beyond sending a byte.
        unsafe {
            let mut spins = 0u32;
            while line_status.read() & 0x20 == 0 && spins < 100_000 {
                spins += 1;
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
