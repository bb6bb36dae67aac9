//! The packet capture's port: COM2, a 16550 UART the hypervisor connects to a file
//! (`image run --pcap FILE`: `-chardev file,… -serial chardev:…`), written without ever
//! waiting for it.
//!
//! [`PcapPort::write`] puts bytes in the UART only while its transmit FIFO is empty (the
//! line status register's THRE bit): when the far end cannot keep up, it takes fewer
//! bytes and the rest stays in the data plane's bounded capture buffer, so forwarding
//! never waits for the capture.

use x86_64::instructions::port::Port;

/// I/O port base of COM2.
const COM2: u16 = 0x2f8;
/// Bytes the 16550's transmit FIFO holds: this many may be written once THRE is set.
const FIFO_BYTES: usize = 16;

/// Register offsets.
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;
const SCRATCH: u16 = 7;
/// Line status: the transmit FIFO is empty.
const THR_EMPTY: u8 = 0x20;

/// COM2, found and set up for raw 8-bit output.
pub struct PcapPort {
    _private: (),
}

fn read(offset: u16) -> u8 {
    let mut port: Port<u8> = Port::new(COM2 + offset);
    // SAFETY: COM2's eight I/O ports belong to the capture (nothing else in the kernel
    // touches them); reading a 16550 register has no effect beyond the UART's own state.
    unsafe { port.read() }
}

fn write(offset: u16, value: u8) {
    let mut port: Port<u8> = Port::new(COM2 + offset);
    // SAFETY: as in `read`: the ports are the capture's alone, and a register write only
    // changes the UART's settings or sends a byte.
    unsafe { port.write(value) }
}

impl PcapPort {
    /// COM2 if the machine has one (its scratch register keeps what is written to it),
    /// set up for 8-bit data, no interrupts, FIFOs on.
    pub fn find() -> Option<PcapPort> {
        for probe in [0x5a, 0xa5] {
            write(SCRATCH, probe);
            if read(SCRATCH) != probe {
                return None;
            }
        }
        write(INTERRUPT_ENABLE, 0);
        // Divisor latch on, divisor 1 (115200 baud: the hypervisor does not pace a file).
        write(LINE_CONTROL, 0x80);
        write(DATA, 1);
        write(INTERRUPT_ENABLE, 0);
        // Divisor latch off; 8 data bits, no parity, one stop bit.
        write(LINE_CONTROL, 0x03);
        // FIFOs on and cleared.
        write(FIFO_CONTROL, 0x07);
        // DTR and RTS: some back ends only pass data with the modem lines up.
        write(MODEM_CONTROL, 0x03);
        Some(PcapPort { _private: () })
    }

    /// Writes a prefix of `bytes` without waiting: a FIFO's worth each time the FIFO is
    /// empty. Returns how many bytes were written.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        let mut written = 0;
        for chunk in bytes.chunks(FIFO_BYTES) {
            if read(LINE_STATUS) & THR_EMPTY == 0 {
                break;
            }
            for &byte in chunk {
                write(DATA, byte);
            }
            written += chunk.len();
        }
        written
    }
}
