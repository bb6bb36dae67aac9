//! Who may touch what: the proof that interrupts are off, the interrupt-context flag, and
//! the only kind of lock the kernel has.
//!
//! - [`InterruptsOff`] is a zero-sized proof that maskable interrupts are disabled on this
//!   (the only) CPU for as long as it is borrowed. Register pairs that an interrupt handler
//!   also uses (the I/O APIC's IOREGSEL/IOWIN) can only be reached through it, so the main
//!   loop cannot be interrupted half-way through a pair and have the handler move the
//!   selector under it.
//! - [`MainLock`] is a spin lock for state that only code outside interrupt context uses
//!   (console, heap, page tables, frame pool). Taking one from an interrupt handler would
//!   deadlock as soon as the handler interrupted its holder, so it is refused: the kernel
//!   stops with a report naming the lock instead of hanging without a word.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, Ordering};

/// Proof that maskable interrupts are disabled on this CPU while the borrow lives.
///
/// Made by [`without_interrupts`] and by the interrupt dispatcher (the CPU enters every
/// handler through an interrupt gate, which clears IF). Not `Send`: it says something about
/// the CPU it was made on.
pub struct InterruptsOff {
    _not_send: PhantomData<*const ()>,
}

impl InterruptsOff {
    /// The proof, inside an interrupt handler.
    ///
    /// # Safety
    /// Only for the dispatcher: the caller must run with interrupts disabled (as every
    /// handler does, entered through an interrupt gate) and must not enable them while the
    /// proof is borrowed.
    pub(super) unsafe fn in_handler() -> InterruptsOff {
        InterruptsOff {
            _not_send: PhantomData,
        }
    }
}

/// Runs `f` with maskable interrupts disabled, giving it the proof; restores the previous
/// state afterwards. `f` must not enable interrupts ([`super::wait`] is the only function
/// that does, and only the main loop calls it).
pub fn without_interrupts<R>(f: impl FnOnce(&InterruptsOff) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| {
        f(&InterruptsOff {
            _not_send: PhantomData,
        })
    })
}

/// Set while a device-interrupt handler runs (handlers never nest: interrupts stay off).
static IN_HANDLER: AtomicBool = AtomicBool::new(false);

/// Marks the start and end of a device-interrupt handler; the handler's body runs in between.
pub(super) fn as_handler(body: impl FnOnce(&InterruptsOff)) {
    // SAFETY: only the dispatcher calls this, for a vector it entered through an interrupt
    // gate (IF is clear), and no handler enables interrupts.
    let off = unsafe { InterruptsOff::in_handler() };
    IN_HANDLER.store(true, Ordering::Relaxed);
    body(&off);
    IN_HANDLER.store(false, Ordering::Relaxed);
}

/// Stops the kernel if called from an interrupt handler: `what` is only for code outside
/// interrupt context.
pub fn forbid_in_handler(what: &str) {
    if IN_HANDLER.load(Ordering::Relaxed) {
        crate::fatal::stop(format_args!(
            "{what} used in interrupt context (a handler may only record and acknowledge)"
        ));
    }
}

/// A spin lock for state used only outside interrupt context. See the module documentation.
pub struct MainLock<T> {
    name: &'static str,
    inner: spin::Mutex<T>,
}

impl<T> MainLock<T> {
    /// A lock named `name` (for the report if it is ever taken in interrupt context).
    pub const fn new(name: &'static str, value: T) -> MainLock<T> {
        MainLock {
            name,
            inner: spin::Mutex::new(value),
        }
    }

    /// Takes the lock. Stops the kernel if called from an interrupt handler.
    pub fn lock(&self) -> spin::MutexGuard<'_, T> {
        forbid_in_handler(self.name);
        self.inner.lock()
    }

    /// Takes the lock if it is free, from any context: only for the fatal path, which never
    /// returns to whatever it interrupted.
    pub fn try_lock_when_stopping(&self) -> Option<spin::MutexGuard<'_, T>> {
        self.inner.try_lock()
    }
}
