//! The Debian packages the comparator VM is made of, fetched with the host's own apt (the
//! Debian mirror is the only network this needs) and unpacked with `dpkg-deb -x`: Debian
//! 12's cloud kernel, the static busybox, and `nft` and `ethtool` with every library they
//! depend on. Downloads are kept under the cache directory, named as `apt-get download`
//! names them, and the unpacked tree is reused while the set of packages is the same.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Failure, Outcome};

/// The metapackage that names the current cloud kernel.
pub const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";
/// Userland, whose `Depends` are followed recursively.
pub const USERLAND: [&str; 3] = ["busybox-static", "nftables", "ethtool"];

/// One package at the version apt would install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deb {
    /// Package name.
    pub package: String,
    /// Version, as apt prints it (with any epoch).
    pub version: String,
    /// Architecture.
    pub architecture: String,
}

impl Deb {
    /// The file name `apt-get download` gives it (the epoch's `:` written `%3a`).
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.package,
            self.version.replace(':', "%3a"),
            self.architecture
        )
    }
}

/// The unpacked packages.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The tree every package was unpacked into.
    pub root: PathBuf,
    /// The packages, in the order they were unpacked.
    pub debs: Vec<Deb>,
}

/// Fetches (what is not cached yet) and unpacks the packages under `cache`.
pub fn fetch_and_unpack(cache: &Path) -> Outcome<Unpacked> {
    let kernel = kernel_package()?;
    let mut names = dependency_closure(&USERLAND)?;
    names.push(kernel);
    names.sort();
    names.dedup();
    let debs = candidates(&names)?;
    let downloads = cache.join("debs");
    create_dir(&downloads)?;
    let missing: Vec<&Deb> = debs
        .iter()
        .filter(|deb| !downloads.join(deb.file_name()).is_file())
        .collect();
    if !missing.is_empty() {
        let specs: Vec<String> = missing
            .iter()
            .map(|deb| format!("{}={}", deb.package, deb.version))
            .collect();
        let mut args = vec!["download", "-q", "-o", "APT::Sandbox::User=root"];
        args.extend(specs.iter().map(String::as_str));
        run_in(&downloads, "apt-get", &args)?;
        for deb in &missing {
            if !downloads.join(deb.file_name()).is_file() {
                return Err(Failure::new(format!(
                    "apt-get download {}={} wrote no {} in {}",
                    deb.package,
                    deb.version,
                    deb.file_name(),
                    downloads.display()
                )));
            }
        }
    }
    let root = cache.join("unpacked");
    let stamp_path = root.join(".moat-packages");
    let stamp: String = debs.iter().map(|deb| deb.file_name() + "\n").collect();
    if std::fs::read_to_string(&stamp_path).ok().as_deref() != Some(stamp.as_str()) {
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .map_err(|error| Failure::new(format!("removing {}: {error}", root.display())))?;
        }
        create_dir(&root)?;
        for deb in &debs {
            let file = downloads.join(deb.file_name());
            run_in(
                &root,
                "dpkg-deb",
                &["-x", &file.to_string_lossy(), &root.to_string_lossy()],
            )?;
        }
        std::fs::write(&stamp_path, stamp)
            .map_err(|error| Failure::new(format!("{}: {error}", stamp_path.display())))?;
    }
    Ok(Unpacked { root, debs })
}

/// The versioned kernel package the metapackage depends on.
fn kernel_package() -> Outcome<String> {
    let output = run_in(
        Path::new("."),
        "apt-cache",
        &["depends", KERNEL_METAPACKAGE],
    )?;
    parse_depends(&output)
        .into_iter()
        .find(|name| name.starts_with("linux-image-"))
        .ok_or_else(|| {
            Failure::new(format!(
                "apt knows no kernel package behind {KERNEL_METAPACKAGE}: run `apt-get update` (a Debian 12 host is needed)\n{output}"
            ))
        })
}

/// `packages` and every package they depend on (Depends and Pre-Depends, recursively).
fn dependency_closure(packages: &[&str]) -> Outcome<Vec<String>> {
    let mut args = vec![
        "depends",
        "--recurse",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
    ];
    args.extend_from_slice(packages);
    let output = run_in(Path::new("."), "apt-cache", &args)?;
    let names = parse_package_headings(&output);
    for package in packages {
        if !names.iter().any(|name| name == package) {
            return Err(Failure::new(format!(
                "apt knows no package {package}: run `apt-get update` (a Debian 12 host is needed)"
            )));
        }
    }
    Ok(names)
}

/// The candidate version of each package.
fn candidates(packages: &[String]) -> Outcome<Vec<Deb>> {
    let mut args = vec!["show", "--no-all-versions"];
    args.extend(packages.iter().map(String::as_str));
    let output = run_in(Path::new("."), "apt-cache", &args)?;
    let debs = parse_show(&output);
    for package in packages {
        if !debs.iter().any(|deb| &deb.package == package) {
            return Err(Failure::new(format!(
                "apt has no installable version of {package}: run `apt-get update`"
            )));
        }
    }
    Ok(debs)
}

/// The packages named by `apt-cache depends` as dependencies (`Depends:` and
/// `PreDepends:` lines), without virtual packages.
pub fn parse_depends(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('|');
            line.strip_prefix("Depends: ")
                .or_else(|| line.strip_prefix("PreDepends: "))
        })
        .map(str::trim)
        .filter(|name| !name.starts_with('<'))
        .map(String::from)
        .collect()
}

/// The packages `apt-cache depends --recurse` reports on (its unindented lines), sorted,
/// without virtual packages.
pub fn parse_package_headings(output: &str) -> Vec<String> {
    let mut names: Vec<String> = output
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with(char::is_whitespace))
        .filter(|line| !line.starts_with('<'))
        .map(|line| line.trim().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The package, version and architecture of each record of `apt-cache show`.
pub fn parse_show(output: &str) -> Vec<Deb> {
    output
        .split("\n\n")
        .filter_map(|record| {
            let field = |name: &str| {
                record
                    .lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                    .map(|value| value.trim().to_string())
            };
            Some(Deb {
                package: field("Package")?,
                version: field("Version")?,
                architecture: field("Architecture")?,
            })
        })
        .collect()
}

fn create_dir(dir: &Path) -> Outcome {
    std::fs::create_dir_all(dir)
        .map_err(|error| Failure::new(format!("creating {}: {error}", dir.display())))
}

/// Runs `program` in `dir` and returns its stdout; fails naming the program (and the Debian
/// package that has it) when it is missing or fails.
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> Outcome<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .map_err(|error| {
            Failure::new(format!(
                "running `{program}` ({error}): the Linux comparator VM is built from Debian packages with apt-get, apt-cache and dpkg-deb (a Debian host)"
            ))
        })?;
    if !output.status.success() {
        return Err(Failure::new(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_metapackage_names_its_versioned_image() {
        let output = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n";
        assert_eq!(parse_depends(output), ["linux-image-6.1.0-57-cloud-amd64"]);
    }

    #[test]
    fn a_recursive_closure_lists_each_real_package_once() {
        let output =
            "nftables\n  Depends: libnftables1\n  Depends: libc6\nlibnftables1\n  Depends: libc6\n\
                      libc6\n  Depends: libgcc-s1\n<awk>\nlibgcc-s1\nlibc6\n";
        assert_eq!(
            parse_package_headings(output),
            ["libc6", "libgcc-s1", "libnftables1", "nftables"]
        );
    }

    #[test]
    fn shown_records_give_the_download_file_name_with_the_epoch_escaped() {
        let output = "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: amd64\n\
                      Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb\n\n\
                      Package: libmnl0\nVersion: 1.0.4-3\nArchitecture: amd64\n\n";
        let debs = parse_show(output);
        assert_eq!(debs.len(), 2);
        assert_eq!(
            debs[0].file_name(),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
        );
        assert_eq!(debs[1].file_name(), "libmnl0_1.0.4-3_amd64.deb");
    }
}
