//! Where the Moat workspace and its build outputs live.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// The Moat source tree and the cargo target directory it builds into.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Directory of the workspace `Cargo.toml`.
    pub root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR` and cargo configuration).
    pub target_dir: PathBuf,
}

impl Workspace {
    /// The workspace this crate was compiled from, with its target directory as reported by
    /// `cargo metadata`.
    pub fn discover() -> Result<Workspace> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or_else(|| Error::Metadata("the image crate has no parent directory".into()))?
            .to_path_buf();
        let target_dir = target_directory(&root)?;
        Ok(Workspace { root, target_dir })
    }

    /// Where `image build` writes artifacts by default: `<target>/moat`.
    pub fn artifact_dir(&self) -> PathBuf {
        self.target_dir.join("moat")
    }

    /// The ruleset built when none is given.
    pub fn default_rules(&self) -> PathBuf {
        self.root.join("rules").join("default.rules")
    }
}

/// The `cargo` to run: the one that runs us (`$CARGO`), else `cargo` on PATH.
pub fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

fn target_directory(root: &Path) -> Result<PathBuf> {
    let manifest = root.join("Cargo.toml");
    let output = Command::new(cargo_program())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|source| Error::Spawn {
            program: "cargo metadata".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Metadata(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    parse_target_directory(&output.stdout)
}

fn parse_target_directory(metadata: &[u8]) -> Result<PathBuf> {
    let value: serde_json::Value =
        serde_json::from_slice(metadata).map_err(|error| Error::Metadata(error.to_string()))?;
    value
        .get("target_directory")
        .and_then(|dir| dir.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| Error::Metadata("no `target_directory` in its output".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_directory_is_read_from_cargo_metadata_output() {
        let json = br#"{"packages":[],"target_directory":"/work/target-x","version":1}"#;
        assert_eq!(
            parse_target_directory(json).unwrap(),
            PathBuf::from("/work/target-x")
        );
    }

    #[test]
    fn metadata_without_a_target_directory_is_an_error_that_says_so() {
        let error = parse_target_directory(br#"{"version":1}"#).unwrap_err();
        assert!(error.to_string().contains("target_directory"), "{error}");
    }

    #[test]
    fn the_workspace_is_the_parent_of_the_image_crate() {
        let workspace = Workspace::discover().unwrap();
        assert!(workspace.root.join("image").join("Cargo.toml").is_file());
        assert!(workspace.artifact_dir().ends_with("moat"));
    }
}
