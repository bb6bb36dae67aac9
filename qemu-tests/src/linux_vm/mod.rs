//! The comparator: a Linux firewall VM running nftables with the policy of a Moat ruleset,
//! booted on the same QEMU topology as Moat, so that benchmarks can put the two side by
//! side.
//!
//! It is built from Debian packages only ([`packages`]: Debian 12's cloud kernel, the static
//! busybox, `nft` and `ethtool` with their libraries), as a kernel and an initramfs
//! ([`initramfs`], written by [`cpio`]) whose `/init` loads the needed modules, loads the
//! nftables translation of the ruleset ([`nft`]), turns forwarding on, runs the network
//! setup made from the ruleset ([`network`]) and prints [`READY_LINE`]. Downloads and the
//! unpacked packages are cached under `<target>/moat/linux-vm/`; an image is rebuilt in
//! about a second, and the same packages and ruleset give the same bytes.
//!
//! [`vm::LinuxVm`] boots an image under QEMU.

pub mod cpio;
pub mod initramfs;
pub mod network;
pub mod nft;
pub mod packages;
pub mod vm;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::kernels::workspace;
use crate::{Failure, Outcome};

pub use initramfs::{FAILED_PREFIX, READY_LINE};

/// Filter rules per `nft -f` file: one transaction of 10,000 rules needs more memory than
/// the VM has (see [`nft::NftPolicy::render_files`]).
pub const RULES_PER_FILE: usize = 1000;

/// What to build: a ruleset, for a VM with some number of NICs, offloads as negotiated or
/// switched off.
#[derive(Debug, Clone)]
pub struct LinuxVariant {
    /// Name, also the directory of its initramfs.
    pub name: String,
    /// The Moat ruleset whose policy the VM enforces.
    pub rules: PathBuf,
    /// NICs of the VM.
    pub nics: u8,
    /// Switch every NIC's offloads off (`ethtool -K`).
    pub offloads_off: bool,
}

/// A bootable comparator image.
#[derive(Debug, Clone)]
pub struct LinuxImage {
    /// The kernel (`-kernel`).
    pub kernel: PathBuf,
    /// The initramfs (`-initrd`).
    pub initrd: PathBuf,
    /// The kernel release.
    pub release: String,
    /// The Debian packages it is made of (`name version`).
    pub packages: Vec<String>,
    /// How many nftables rules the filter chains hold.
    pub filter_rules: usize,
    /// The variant.
    pub variant: LinuxVariant,
}

/// The cache directory: `<target>/moat/linux-vm`.
pub fn cache_dir() -> Outcome<PathBuf> {
    Ok(workspace()?.artifact_dir().join("linux-vm"))
}

/// Builds (from the cached packages, fetching what is missing) the image of `variant`.
pub fn build(variant: &LinuxVariant) -> Outcome<LinuxImage> {
    let cache = cache_dir()?;
    let unpacked = packages::fetch_and_unpack(&cache)?;
    let base = initramfs::assemble(&unpacked.root)?;
    let text = std::fs::read_to_string(&variant.rules)
        .map_err(|error| Failure::new(format!("reading {}: {error}", variant.rules.display())))?;
    let name = variant
        .rules
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let compiled = rules::compile(&name, &text).map_err(|error| {
        Failure::new(format!(
            "{} does not compile:\n{}",
            variant.rules.display(),
            error.render()
        ))
    })?;
    let policy = nft::translate(&compiled.checked, variant.nics).map_err(|reason| {
        Failure::new(format!(
            "{} has no nftables translation: {reason}",
            variant.rules.display()
        ))
    })?;
    let mut archive = base.archive;
    for (index, file) in policy.render_files(RULES_PER_FILE).into_iter().enumerate() {
        archive.insert(
            &format!("etc/moat/ruleset-{index:04}.nft"),
            initramfs::text_file(file, 0o644),
        );
    }
    archive.insert(
        "etc/moat/setup.sh",
        initramfs::text_file(
            network::setup_script(&compiled.checked, variant.nics, variant.offloads_off),
            0o644,
        ),
    );
    let dir = cache.join("images").join(&variant.name);
    std::fs::create_dir_all(&dir)
        .map_err(|error| Failure::new(format!("creating {}: {error}", dir.display())))?;
    let initrd = dir.join("initrd.gz");
    write_if_changed(&initrd, &gzip(&archive.to_bytes())?)?;
    Ok(LinuxImage {
        kernel: base.kernel,
        initrd,
        release: base.release,
        packages: unpacked
            .debs
            .iter()
            .map(|deb| format!("{} {}", deb.package, deb.version))
            .collect(),
        filter_rules: policy.filter.len(),
        variant: variant.clone(),
    })
}

/// `bytes` compressed with `gzip -n` (no name, no time stamp: the same bytes every time).
fn gzip(bytes: &[u8]) -> Outcome<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| Failure::new(format!("running gzip: {error}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Failure::new("gzip's stdin is not piped"))?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .map_err(|error| Failure::new(format!("running gzip: {error}")))?;
    let written = writer.join();
    if !output.status.success() || !matches!(written, Ok(Ok(()))) {
        return Err(Failure::new(format!("gzip failed ({})", output.status)));
    }
    Ok(output.stdout)
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Outcome {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes)
        .map_err(|error| Failure::new(format!("writing {}: {error}", path.display())))
}
