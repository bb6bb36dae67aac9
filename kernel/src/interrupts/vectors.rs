//! The interrupt vector layout, fixed at build time:
//!
//! | vectors     | what                                                   |
//! |-------------|--------------------------------------------------------|
//! | 0x00-0x1f   | CPU exceptions (all fatal)                             |
//! | 0x20        | the LAPIC timer (the wake-up timer)                    |
//! | 0x30-0x6f   | I/O APIC lines: GSI `n` arrives on `0x30 + n`          |
//! | 0x70-0xef   | message-signalled interrupts, handed out once at boot  |
//! | 0xff        | the LAPIC's spurious vector                            |

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// One interrupt vector (an IDT index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector(u8);

/// First vector of the I/O APIC lines.
const GSI_BASE: u8 = 0x30;
/// Highest GSI the kernel routes.
pub const MAX_GSI: u32 = 63;
/// First and last vector handed out for MSI/MSI-X.
const MSI_FIRST: u8 = 0x70;
const MSI_LAST: u8 = 0xef;

/// The next MSI vector to hand out.
static NEXT_MSI: AtomicU8 = AtomicU8::new(MSI_FIRST);

impl Vector {
    /// The LAPIC timer.
    pub const TIMER: Vector = Vector(0x20);
    /// The LAPIC's spurious-interrupt vector.
    pub const SPURIOUS: Vector = Vector(0xff);

    /// The vector I/O APIC line `gsi` is routed to, if the kernel routes that line.
    pub fn for_gsi(gsi: u32) -> Option<Vector> {
        (gsi <= MAX_GSI).then(|| Vector(GSI_BASE + gsi as u8))
    }

    /// A fresh vector for a message-signalled interrupt, or `None` once all are taken.
    /// Vectors are never given back: devices are set up once, at boot.
    pub fn allocate_msi() -> Option<Vector> {
        let mut next = NEXT_MSI.load(Ordering::Relaxed);
        loop {
            if next > MSI_LAST {
                return None;
            }
            match NEXT_MSI.compare_exchange(next, next + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(Vector(next)),
                Err(seen) => next = seen,
            }
        }
    }

    /// The vector with this IDT index (as the dispatcher sees it).
    pub(super) fn from_index(index: u8) -> Vector {
        Vector(index)
    }

    /// The IDT index.
    pub fn index(self) -> u8 {
        self.0
    }

    /// The GSI whose I/O APIC line this vector serves, if it is one.
    pub fn gsi(self) -> Option<u32> {
        let gsi = self.0.checked_sub(GSI_BASE)? as u32;
        (gsi <= MAX_GSI).then_some(gsi)
    }

    /// Whether this is a CPU exception vector.
    pub fn is_exception(self) -> bool {
        self.0 < 0x20
    }
}

impl fmt::Display for Vector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}
