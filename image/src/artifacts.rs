//! `image build`: the kernel ELF, the BIOS+UEFI disk image and its qcow2 conversion, with
//! their sizes and sha256 digests.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::disk_image::{partial_path, write_qcow2, DiskImageBuild};
use crate::error::{Error, Result};
use crate::kernel_build::{Diagnostics, KernelBuild};
use crate::workspace::Workspace;
use crate::{policy_embed, ruleset};

/// File names of the artifacts inside the output directory.
pub const ELF_NAME: &str = "moat.elf";
/// Raw BIOS+UEFI disk image.
pub const DISK_NAME: &str = "moat.img";
/// qcow2 conversion of the disk image.
pub const QCOW2_NAME: &str = "moat.qcow2";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Ruleset file (`None`: `rules/default.rules`).
    pub rules: Option<PathBuf>,
    /// Cargo features of the kernel.
    pub features: Vec<String>,
    /// An already built Moat kernel ELF (as cargo links it) to write the ruleset into,
    /// instead of building one: `features` must then be empty.
    pub kernel_elf: Option<PathBuf>,
    /// Kernel command line baked into the disk image's GRUB configuration.
    pub kernel_cmdline: String,
    /// Output directory (`None`: `<target>/moat`).
    pub out_dir: Option<PathBuf>,
    /// Where cargo's diagnostics go.
    pub diagnostics: Diagnostics,
}

/// The three artifacts of one build, all in one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    /// Kernel ELF for direct boot (`qemu -kernel`).
    pub elf: PathBuf,
    /// Raw disk image, boots with BIOS and UEFI.
    pub disk: PathBuf,
    /// The disk image as qcow2.
    pub qcow2: PathBuf,
}

impl Artifacts {
    /// The artifact paths inside `dir` (whether or not they exist yet).
    pub fn in_dir(dir: &Path) -> Artifacts {
        Artifacts {
            elf: dir.join(ELF_NAME),
            disk: dir.join(DISK_NAME),
            qcow2: dir.join(QCOW2_NAME),
        }
    }

    /// Size and sha256 of each artifact, in the order ELF, disk, qcow2.
    pub fn digests(&self) -> Result<Vec<ArtifactDigest>> {
        [&self.elf, &self.disk, &self.qcow2]
            .into_iter()
            .map(|path| ArtifactDigest::of(path))
            .collect()
    }
}

/// Size and sha256 of one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactDigest {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256.
    pub sha256: [u8; 32],
}

impl ArtifactDigest {
    /// Reads `path` and hashes it.
    pub fn of(path: &Path) -> Result<ArtifactDigest> {
        let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let read = file.read(&mut buffer).map_err(Error::io(path))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
        Ok(ArtifactDigest {
            path: path.to_path_buf(),
            size,
            sha256: hasher.finalize().into(),
        })
    }

    /// The sha256 as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        self.sha256
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl std::fmt::Display for ArtifactDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {:>10} bytes  sha256:{}",
            self.path.display(),
            self.size,
            self.sha256_hex()
        )
    }
}

/// Compiles the ruleset, builds the kernel (a no-op when only the ruleset changed), writes
/// the ruleset into a copy of the kernel ELF and writes the three artifacts.
pub fn build(workspace: &Workspace, request: &BuildRequest) -> Result<Artifacts> {
    let out_dir = request
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace.artifact_dir());
    let rules = ruleset::resolve(workspace, request.rules.as_deref())?;
    let policy = ruleset::compile(workspace, &rules, request.diagnostics)?;
    let kernel_elf = match &request.kernel_elf {
        Some(_) if !request.features.is_empty() => {
            return Err(Error::InvalidRequest(
                "kernel features cannot be chosen for an already built kernel ELF".into(),
            ))
        }
        Some(elf) => elf.clone(),
        None => {
            KernelBuild {
                features: request.features.clone(),
                diagnostics: request.diagnostics,
            }
            .run(workspace)?
            .elf
        }
    };
    let linked = std::fs::read(&kernel_elf).map_err(Error::io(&kernel_elf))?;
    let elf = policy_embed::embed(&linked, &policy).map_err(|source| Error::Embed {
        elf: kernel_elf.clone(),
        source,
    })?;
    write_artifacts(&elf, &out_dir, &request.kernel_cmdline)
}

/// Writes the three artifacts for an already built kernel ELF (the kernel, or any other
/// Multiboot2 + PVH ELF such as the probe guest) into `out_dir`.
pub fn package(kernel_elf: &Path, out_dir: &Path, kernel_cmdline: &str) -> Result<Artifacts> {
    let elf = std::fs::read(kernel_elf).map_err(Error::io(kernel_elf))?;
    write_artifacts(&elf, out_dir, kernel_cmdline)
}

/// Writes `elf` as `moat.elf`, then the disk image and its qcow2 conversion, into `out_dir`.
fn write_artifacts(elf: &[u8], out_dir: &Path, kernel_cmdline: &str) -> Result<Artifacts> {
    std::fs::create_dir_all(out_dir).map_err(Error::io(out_dir))?;
    let artifacts = Artifacts::in_dir(out_dir);
    let partial_elf = partial_path(&artifacts.elf);
    std::fs::write(&partial_elf, elf).map_err(Error::io(&partial_elf))?;
    std::fs::rename(&partial_elf, &artifacts.elf).map_err(Error::io(&artifacts.elf))?;

    let kernel_digest = ArtifactDigest::of(&artifacts.elf)?;
    let scratch = out_dir.join(format!(".disk-tree-{}", std::process::id()));
    DiskImageBuild {
        kernel: &artifacts.elf,
        kernel_sha256: &kernel_digest.sha256,
        kernel_cmdline,
        scratch: &scratch,
    }
    .write_raw(&artifacts.disk)?;
    write_qcow2(&artifacts.disk, &artifacts.qcow2)?;
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_a_known_file_matches_sha256sum() {
        let dir = std::env::temp_dir().join(format!("moat-digest-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        std::fs::write(&file, b"abc").unwrap();
        let digest = ArtifactDigest::of(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(digest.size, 3);
        assert_eq!(
            digest.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn digest_of_a_missing_file_names_the_file() {
        let error = ArtifactDigest::of(Path::new("/nonexistent/moat.img")).unwrap_err();
        assert!(
            error.to_string().starts_with("/nonexistent/moat.img"),
            "{error}"
        );
    }
}
