//! The ruleset this image enforces: the policy blob that `image build` wrote into the ELF's
//! last segment (`.moat_policy`, see `linker.ld`), decoded once at boot onto the heap. The
//! segment's pages then join the heap (`memory::init`, `memory::release_policy`): after
//! [`load`], nothing reads them as the policy again.
//!
//! The kernel is linked with a bare header that says "no ruleset"; a kernel booted without
//! one (a `cargo build` ELF that never went through `image build`) stops with a message
//! naming the problem, as does one whose blob is damaged: it never runs without a policy.

use alloc::boxed::Box;
use core::fmt;

use dataplane::policy::codegen::blob::{self, BlobError, HEADER_LEN, PLACEHOLDER};
use dataplane::policy::Policy;

/// What the kernel is linked with; `image build` writes the compiled ruleset over it.
#[used]
#[unsafe(link_section = ".moat_policy")]
static LINKED_HEADER: [u8; HEADER_LEN] = PLACEHOLDER;

unsafe extern "C" {
    /// Start of the `.moat_policy` segment (linker script).
    static __policy_start: u8;
}

/// The most bytes a policy blob may claim: far more than a 100,000-rule ruleset takes,
/// and small enough that a damaged header cannot make the image reach past 4 GiB.
const MAX_LEN: usize = 256 * 1024 * 1024;

/// Where the embedded blob starts, and its length as its header gives it (just the header
/// when the header is unreadable or claims more than [`MAX_LEN`]: [`load`] then reports
/// why). Only before `memory::init`, which may give the segment to the heap.
pub fn extent() -> (u64, usize) {
    let start = (&raw const __policy_start) as u64;
    let len = match blob::total_len(header()) {
        Ok(len) if len <= MAX_LEN => len,
        _ => HEADER_LEN,
    };
    (start, len)
}

/// The embedded blob's header.
fn header() -> &'static [u8] {
    // SAFETY: the linker script places at least the linked header (`LINKED_HEADER`,
    // `HEADER_LEN` bytes) at `__policy_start`, in a loaded segment that the early page
    // tables identity-map (this is only called before `memory::init`). The bytes are read
    // through the linker symbol, never through `LINKED_HEADER`, whose contents the
    // compiler could otherwise assume unchanged.
    unsafe { core::slice::from_raw_parts(&raw const __policy_start, HEADER_LEN) }
}

/// Why the embedded policy cannot be used.
#[derive(Debug)]
pub enum EmbeddedPolicyError {
    /// The blob is missing or damaged.
    Blob(BlobError),
    /// The header claims more than [`MAX_LEN`] bytes.
    TooLong(usize),
}

impl From<BlobError> for EmbeddedPolicyError {
    fn from(e: BlobError) -> Self {
        EmbeddedPolicyError::Blob(e)
    }
}

impl fmt::Display for EmbeddedPolicyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            EmbeddedPolicyError::Blob(BlobError::Empty) => write!(
                f,
                "the embedded ruleset: {}; this ELF is the kernel as linked, build the image \
                 with `image build` (it writes the compiled ruleset in)",
                BlobError::Empty
            ),
            EmbeddedPolicyError::Blob(e) => write!(f, "the embedded ruleset: {e}"),
            EmbeddedPolicyError::TooLong(len) => write!(
                f,
                "the embedded ruleset claims {len} bytes, more than the {MAX_LEN} a policy may take"
            ),
        }
    }
}

/// The whole blob at `start` (header included), its length from its header.
fn bytes_at(start: u64) -> Result<&'static [u8], EmbeddedPolicyError> {
    // SAFETY: `start` is where the policy segment was loaded (`__policy_start`) or where
    // `memory::init` copied it, whole pages, both identity-mapped; the header is its first
    // `HEADER_LEN` bytes, which the linker script always provides.
    let header = unsafe { core::slice::from_raw_parts(start as *const u8, HEADER_LEN) };
    let len = blob::total_len(header)?;
    if len > MAX_LEN {
        return Err(EmbeddedPolicyError::TooLong(len));
    }
    // SAFETY: the header says the blob is `len` bytes long, and the image tool wrote that
    // many bytes as the segment's contents, which the boot loader loaded (and
    // `memory::init` copies, whole pages, when it moves them); `memory::KernelLayout` keeps
    // them out of the heap until `memory::release_policy`. `len` is bounded by `MAX_LEN`,
    // so the range stays below 4 GiB.
    Ok(unsafe { core::slice::from_raw_parts(start as *const u8, len) })
}

/// The ruleset's file name and the digest of its compiled form, read in place without the
/// heap (for the boot banner, which comes before memory is set up).
///
/// Only before `memory::init` (see [`extent`]).
pub fn identity() -> Result<(&'static str, &'static str), EmbeddedPolicyError> {
    let (start, _) = extent();
    Ok(blob::identity(bytes_at(start)?)?)
}

/// Decodes the policy blob at `at` (`memory::MemorySummary::policy_at`) onto the heap, for
/// the rest of the appliance's life. Nothing is borrowed from the blob: once this returns,
/// its memory may be reused (`memory::release_policy`).
pub fn load(at: u64) -> Result<&'static Policy<'static>, EmbeddedPolicyError> {
    let buf = Box::leak(Box::new(blob::decode(bytes_at(at)?)?));
    Ok(Box::leak(Box::new(buf.as_policy())))
}
