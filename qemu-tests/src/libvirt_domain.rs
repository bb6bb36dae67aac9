//! The appliance run by libvirt, as users run it: the domain XML `image libvirt-xml` writes
//! ([`image::libvirt::Domain`]), `virsh define`, `virsh start`, the serial console in a
//! file, `virsh shutdown` (the ACPI power button). Root only.
//!
//! libvirtd (and virtlogd, which it needs for file consoles) is started if it is not
//! running. The domain runs as libvirt's QEMU user, so what it reads — the kernel — is
//! copied into a world-readable directory of the test's own. Dropping a
//! [`LibvirtDomain`] always destroys and undefines the domain and removes that directory;
//! domains left by a test process that was killed are removed the first time one is made.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use image::libvirt::Domain;

use crate::console::clean_line;
use crate::leftovers::{owned_name, owner_is_dead};
use crate::{Failure, Outcome};

/// The connection every command uses: the system libvirtd.
const CONNECTION: &str = "qemu:///system";
/// Domain names (and their directories) start with this, then the owner's pid.
const NAME_PREFIX: &str = "moat-lv-";
/// How long libvirtd may take to accept connections after it is started.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

/// `virsh -c qemu:///system ARGS`, its stdout on success; a failure names the command and
/// virsh's complaint.
pub fn virsh(args: &[&str]) -> Outcome<String> {
    let output = Command::new("virsh")
        .args(["-c", CONNECTION])
        .args(args)
        .output()
        .map_err(|error| {
            Failure::new(format!(
                "running virsh: {error} (scripts/setup installs libvirt-clients)"
            ))
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(Failure::new(format!(
            "virsh {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Starts virtlogd and libvirtd unless libvirtd already answers, and waits until it does.
pub fn ensure_libvirtd() -> Outcome {
    if virsh(&["version"]).is_ok() {
        return Ok(());
    }
    for daemon in ["virtlogd", "libvirtd"] {
        let status = Command::new(daemon).arg("-d").status().map_err(|error| {
            Failure::new(format!(
                "starting {daemon}: {error} (scripts/setup installs libvirt-daemon-system)"
            ))
        })?;
        if !status.success() {
            return Err(Failure::new(format!("{daemon} -d failed ({status})")));
        }
    }
    let deadline = Instant::now() + DAEMON_TIMEOUT;
    loop {
        match virsh(&["version"]) {
            Ok(_) => return Ok(()),
            Err(failure) if Instant::now() >= deadline => {
                return Err(Failure::new(format!(
                    "libvirtd does not answer {} s after it was started: {failure}",
                    DAEMON_TIMEOUT.as_secs()
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Removes the domains (and directories) of test processes that no longer run.
fn remove_domains_of_dead_processes() {
    let Ok(names) = virsh(&["list", "--all", "--name"]) else {
        return;
    };
    for name in names
        .lines()
        .filter(|name| owner_is_dead(name, NAME_PREFIX))
    {
        let _ = virsh(&["destroy", name]);
        let _ = virsh(&["undefine", name]);
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(name));
    }
}

/// A directory libvirt's QEMU user can read, named like its domain.
pub struct DomainDir {
    /// The domain's name (`moat-lv-<pid>-<serial>`).
    pub name: String,
    /// The directory (`/tmp/<name>`).
    pub path: PathBuf,
}

impl DomainDir {
    /// Makes the directory for a new domain.
    pub fn create() -> Outcome<DomainDir> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_domains_of_dead_processes);
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = owned_name(NAME_PREFIX, NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&path)
            .and_then(|()| set_mode(&path, 0o755))
            .map_err(|error| Failure::new(format!("creating {}: {error}", path.display())))?;
        Ok(DomainDir { name, path })
    }

    /// Copies `file` into the directory, readable by everyone; returns the copy's path.
    pub fn copy_in(&self, file: &Path) -> Outcome<PathBuf> {
        let name = file
            .file_name()
            .ok_or_else(|| Failure::new(format!("{} has no file name", file.display())))?;
        let copy = self.path.join(name);
        std::fs::copy(file, &copy)
            .and_then(|_| set_mode(&copy, 0o644))
            .map_err(|error| Failure::new(format!("copying {}: {error}", file.display())))?;
        Ok(copy)
    }
}

impl Drop for DomainDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A defined and started domain. Dropping it destroys and undefines it, then its
/// directory is removed.
pub struct LibvirtDomain {
    dir: DomainDir,
    console: PathBuf,
}

impl LibvirtDomain {
    /// Writes `domain`'s XML into `dir`, defines and starts it. `console` is the file its
    /// XML sends the serial console to.
    pub fn start(domain: &Domain, dir: DomainDir, console: PathBuf) -> Outcome<LibvirtDomain> {
        let xml = domain.render()?;
        let file = dir.path.join("domain.xml");
        std::fs::write(&file, xml)
            .map_err(|error| Failure::new(format!("writing {}: {error}", file.display())))?;
        let file_text = file.to_string_lossy().to_string();
        virsh(&["define", &file_text])?;
        // From here on, dropping undefines it.
        let started = LibvirtDomain { dir, console };
        virsh(&["start", &started.dir.name])?;
        Ok(started)
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.dir.name
    }

    /// The console's lines so far.
    pub fn console_lines(&self) -> Vec<String> {
        std::fs::read(&self.console)
            .map(|bytes| bytes.split(|&b| b == b'\n').map(clean_line).collect())
            .unwrap_or_default()
    }

    /// Waits until the console has a line equal to `line`.
    pub fn wait_for_console_line(&self, line: &str, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.console_lines().iter().any(|seen| seen == line) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Failure::new(format!(
            "timed out after {} s waiting for `{line}` on the console of {}:\n{}",
            timeout.as_secs(),
            self.name(),
            self.console_lines().join("\n")
        )))
    }

    /// `virsh domstate`: `running`, `shut off`, ...
    pub fn state(&self) -> Outcome<String> {
        virsh(&["domstate", self.name()])
    }

    /// Waits until the domain's state is `state`.
    pub fn wait_for_state(&self, state: &str, timeout: Duration) -> Outcome {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.state()?;
            if now == state {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "{} is `{now}` {} s later, expected `{state}`",
                    self.name(),
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for LibvirtDomain {
    fn drop(&mut self) {
        let _ = virsh(&["destroy", self.name()]);
        let _ = virsh(&["undefine", self.name()]);
    }
}
