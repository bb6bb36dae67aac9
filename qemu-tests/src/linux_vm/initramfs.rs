//! The comparator VM's initramfs, assembled from the unpacked packages: the static busybox,
//! `nft` and `ethtool` with exactly the libraries the dynamic loader resolves for them, the
//! kernel modules a firewall needs with their dependencies (from `modules.dep`) and the
//! order to load them in, and [`INIT`], the `/init` that brings the firewall up. The
//! per-ruleset files (`/etc/moat/setup.sh`, `/etc/moat/ruleset-NNNN.nft`) are added by the
//! caller.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::linux_vm::cpio::{Archive, Node};
use crate::linux_vm::packages::run_in;
use crate::{Failure, Outcome};

/// The line `/init` prints once the firewall is up.
pub const READY_LINE: &str = "moat-linux: ready";
/// The prefix of the line `/init` prints when a step fails (it then powers off).
pub const FAILED_PREFIX: &str = "moat-linux: FAILED";

/// `/init`: mounts, loads the modules in order, loads the nftables ruleset, turns forwarding
/// on, runs the ruleset's network setup (links come up only now: the VM never forwards
/// unfiltered, and never answers "host unreachable" for want of forwarding), says it is
/// ready, and stays PID 1 forever. Any failure is printed and
/// powers the VM off (QEMU runs with `-no-reboot`), so a harness never waits in vain.
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
fail() { echo "moat-linux: FAILED: $*"; poweroff -f; sleep 60; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
release=$(uname -r)
while read -r module; do
  insmod "/lib/modules/$release/$module" || fail "insmod $module"
done < /etc/moat/modules
for ruleset in /etc/moat/ruleset-*.nft; do
  nft -f "$ruleset" || fail "nft -f $ruleset"
done
sysctl -q -w net.ipv4.ip_forward=1 || fail "ip_forward"
. /etc/moat/setup.sh || fail "network setup"
echo "moat-linux: $(ls /etc/moat/ruleset-*.nft | wc -l) ruleset files loaded, conntrack max $(cat /proc/sys/net/netfilter/nf_conntrack_max), $(grep MemTotal /proc/meminfo | tr -s ' ')"
echo "moat-linux: ready"
while :; do sleep 3600; done
"#;

/// Programs taken from the packages (paths inside the unpacked tree).
const PROGRAMS: [&str; 3] = ["bin/busybox", "usr/sbin/nft", "sbin/ethtool"];
/// The program interpreter named by the dynamically linked programs.
const INTERPRETER: &str = "lib64/ld-linux-x86-64.so.2";
/// Where the multiarch libraries live in the unpacked tree.
const LIBRARY_DIRS: [&str; 2] = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];

/// The kernel modules loaded at boot (their dependencies come along): the virtio NIC, and
/// nftables with connection tracking, NAT, reject, logging, limits (also as named
/// objects: `nft_objref`) and connection counts.
pub const MODULES: [&str; 15] = [
    "virtio_pci",
    "virtio_net",
    "nf_conntrack",
    "nf_nat",
    "nf_tables",
    "nft_ct",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_reject_ipv4",
    "nft_limit",
    "nft_log",
    "nf_log_syslog",
    "nft_connlimit",
    "nft_objref",
];

/// The kernel and the base initramfs.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The kernel (`vmlinuz`) inside the unpacked tree.
    pub kernel: PathBuf,
    /// The kernel release (`uname -r`).
    pub release: String,
    /// Everything but the per-ruleset files.
    pub archive: Archive,
}

/// Assembles the base initramfs from the unpacked tree at `root`.
pub fn assemble(root: &Path) -> Outcome<BaseImage> {
    let release = kernel_release(root)?;
    let kernel = root.join("boot").join(format!("vmlinuz-{release}"));
    if !kernel.is_file() {
        return Err(Failure::new(format!(
            "the kernel package has no {}",
            kernel.display()
        )));
    }
    let mut archive = Archive::new();
    let mut tree = Tree {
        root,
        archive: &mut archive,
    };
    for program in PROGRAMS {
        tree.add(program)?;
    }
    tree.add(INTERPRETER)?;
    for library in libraries(root)? {
        tree.add(&library)?;
    }
    let modules_dir = format!("lib/modules/{release}");
    let dep_path = root.join(&modules_dir).join("modules.dep");
    if !dep_path.is_file() {
        // The package leaves modules.dep to depmod at install time: the busybox of the
        // packages (static, so it runs on the host too) writes it.
        let busybox = root.join("bin/busybox").to_string_lossy().into_owned();
        run_in(
            root,
            &busybox,
            &["depmod", "-b", &root.to_string_lossy(), &release],
        )?;
    }
    let dep_text = std::fs::read_to_string(&dep_path)
        .map_err(|error| Failure::new(format!("reading {}: {error}", dep_path.display())))?;
    let order = load_order(&parse_modules_dep(&dep_text), &MODULES)?;
    for module in &order {
        tree.add(&format!("{modules_dir}/{module}"))?;
    }
    archive.insert(
        "etc/moat/modules",
        text_file(order.iter().map(|m| format!("{m}\n")).collect(), 0o644),
    );
    archive.insert("init", text_file(INIT.to_string(), 0o755));
    for dir in ["proc", "sys", "dev", "tmp", "sbin", "usr/bin", "run"] {
        archive.insert(dir, Node::Directory);
    }
    Ok(BaseImage {
        kernel,
        release,
        archive,
    })
}

/// A text file node.
pub fn text_file(text: String, mode: u32) -> Node {
    Node::File {
        bytes: text.into_bytes(),
        mode,
    }
}

/// The one kernel release under `lib/modules`.
fn kernel_release(root: &Path) -> Outcome<String> {
    let dir = root.join("lib/modules");
    let mut releases: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|error| Failure::new(format!("reading {}: {error}", dir.display())))?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    match releases.as_slice() {
        [release] => Ok(release.clone()),
        _ => Err(Failure::new(format!(
            "expected one kernel under {}, found {releases:?}",
            dir.display()
        ))),
    }
}

/// The libraries the dynamic loader of the unpacked tree resolves for the dynamically
/// linked programs, searching only the tree: paths relative to `root`.
fn libraries(root: &Path) -> Outcome<BTreeSet<String>> {
    let loader = root.join("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    let search: Vec<String> = LIBRARY_DIRS
        .iter()
        .map(|dir| root.join(dir).to_string_lossy().into_owned())
        .collect();
    let search = search.join(":");
    let mut libraries = BTreeSet::new();
    for program in ["usr/sbin/nft", "sbin/ethtool"] {
        let binary = root.join(program).to_string_lossy().into_owned();
        let listing = run_in(
            root,
            &loader.to_string_lossy(),
            &["--library-path", &search, "--list", &binary],
        )?;
        for library in parse_loader_list(&listing).map_err(|missing| {
            Failure::new(format!(
                "{program} needs {missing}, which no unpacked package provides"
            ))
        })? {
            let relative = Path::new(&library)
                .strip_prefix(root)
                .map_err(|_| {
                    Failure::new(format!(
                        "{program}'s library {library} resolved outside the unpacked packages"
                    ))
                })?
                .to_string_lossy()
                .into_owned();
            libraries.insert(relative);
        }
    }
    Ok(libraries)
}

/// The resolved paths of `ld.so --list` output (`name => path (address)` lines); the name
/// of a library that was `not found` is the error.
pub fn parse_loader_list(listing: &str) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    for line in listing.lines() {
        let Some((name, resolved)) = line.split_once("=>") else {
            continue; // the vDSO, or the loader itself without a path
        };
        let resolved = resolved.trim();
        if resolved.starts_with("not found") {
            return Err(name.trim().to_string());
        }
        let path = resolved.split(" (").next().unwrap_or(resolved).trim();
        paths.push(path.to_string());
    }
    Ok(paths)
}

/// `modules.dep`: each module's path and the paths of the modules it needs.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|line| {
            let (module, needs) = line.split_once(':')?;
            Some((
                module.trim().to_string(),
                needs.split_whitespace().map(String::from).collect(),
            ))
        })
        .collect()
}

/// The name a module is loaded by: its file name without `.ko`, `-` read as `_`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

/// The module paths to load for `wanted`, each after every module it needs.
pub fn load_order(deps: &BTreeMap<String, Vec<String>>, wanted: &[&str]) -> Outcome<Vec<String>> {
    fn visit(
        module: &str,
        deps: &BTreeMap<String, Vec<String>>,
        order: &mut Vec<String>,
        visiting: &mut BTreeSet<String>,
    ) -> Outcome {
        if order.iter().any(|m| m == module) {
            return Ok(());
        }
        if !visiting.insert(module.to_string()) {
            return Err(Failure::new(format!(
                "modules.dep has a dependency cycle through {module}"
            )));
        }
        let needs = deps
            .get(module)
            .ok_or_else(|| Failure::new(format!("modules.dep does not list {module}")))?;
        for need in needs {
            visit(need, deps, order, visiting)?;
        }
        order.push(module.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    let mut visiting = BTreeSet::new();
    for name in wanted {
        let path = deps
            .keys()
            .find(|path| module_name(path) == *name)
            .ok_or_else(|| {
                Failure::new(format!(
                    "the kernel package has no module {name} (built in, or renamed?)"
                ))
            })?;
        visit(path, deps, &mut order, &mut visiting)?;
    }
    Ok(order)
}

/// Adds files of the unpacked tree to the archive, symbolic links with their targets.
struct Tree<'a> {
    root: &'a Path,
    archive: &'a mut Archive,
}

impl Tree<'_> {
    fn add(&mut self, relative: &str) -> Outcome {
        if self.archive.contains(relative) {
            return Ok(());
        }
        let path = self.root.join(relative);
        let metadata = std::fs::symlink_metadata(&path)
            .map_err(|error| Failure::new(format!("{}: {error}", path.display())))?;
        if metadata.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(|error| Failure::new(format!("{}: {error}", path.display())))?;
            let target_text = target.to_string_lossy().into_owned();
            self.archive.insert(relative, Node::Symlink(target_text));
            let parent = Path::new(relative).parent().unwrap_or(Path::new(""));
            let resolved = normalize(&parent.join(&target));
            return self.add(&resolved);
        }
        use std::os::unix::fs::PermissionsExt;
        let bytes = std::fs::read(&path)
            .map_err(|error| Failure::new(format!("reading {}: {error}", path.display())))?;
        self.archive.insert(
            relative,
            Node::File {
                bytes,
                mode: metadata.permissions().mode() & 0o7777,
            },
        );
        Ok(())
    }
}

/// `path` without `.`, `..` or a leading `/`, as a path relative to the tree's root.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_listings_give_resolved_paths_and_name_what_is_missing() {
        let listing = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                       \tlibnftables.so.1 => /c/usr/lib/x86_64-linux-gnu/libnftables.so.1 (0x00007f08)\n\
                       \t/lib64/ld-linux-x86-64.so.2 => /c/lib64/ld-linux-x86-64.so.2 (0x00007f08)\n";
        assert_eq!(
            parse_loader_list(listing).unwrap(),
            [
                "/c/usr/lib/x86_64-linux-gnu/libnftables.so.1",
                "/c/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert_eq!(
            parse_loader_list("\tlibgmp.so.10 => not found\n").unwrap_err(),
            "libgmp.so.10"
        );
    }

    #[test]
    fn modules_load_after_what_they_need_each_once() {
        let deps = parse_modules_dep(
            "kernel/net/netfilter/nft_ct.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/netfilter/nf_tables.ko\n\
             kernel/net/netfilter/nf_tables.ko: kernel/lib/libcrc32c.ko\n\
             kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko\n\
             kernel/lib/libcrc32c.ko:\n\
             kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko\n\
             kernel/drivers/net/net_failover.ko:\n",
        );
        let order = load_order(&deps, &["nft_ct", "nf_tables", "virtio_net"]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/lib/libcrc32c.ko",
                "kernel/net/netfilter/nf_conntrack.ko",
                "kernel/net/netfilter/nf_tables.ko",
                "kernel/net/netfilter/nft_ct.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
            ]
        );
        let missing = load_order(&deps, &["nft_masq"]).unwrap_err();
        assert!(missing.to_string().contains("nft_masq"), "{missing}");
    }

    #[test]
    fn link_targets_are_resolved_inside_the_tree() {
        assert_eq!(
            normalize(Path::new("lib64/../lib/x86_64-linux-gnu/ld.so")),
            "lib/x86_64-linux-gnu/ld.so"
        );
        assert_eq!(normalize(Path::new("lib64//lib/x.so")), "lib64/lib/x.so");
        assert_eq!(normalize(Path::new("/lib/x.so")), "lib/x.so");
    }
}
