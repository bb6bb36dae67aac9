//! `scripts/run --client`, as a newcomer runs it: the appliance boots with a client
//! namespace on nic1, the script says what to type, what it says works (a ping through the
//! appliance), and quitting QEMU (Ctrl-A X) removes the namespace. Root only.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qemu_tests::console::Console;
use qemu_tests::kernels::workspace;
use qemu_tests::notice::require_root;
use qemu_tests::{ensure, Failure, Outcome};

/// The script builds the default image first: allow for a cold build.
const READY_TIMEOUT: Duration = Duration::from_secs(900);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// What the script's instructions start with, before the namespace's name.
const ANNOUNCEMENT: &str = "run: client namespace ";

/// The script's process group, stopped (its trap then removes the namespace) if the test
/// ends early.
struct Script {
    child: Child,
    ended: bool,
}

impl Script {
    /// Waits for the script to end (after QEMU quits).
    fn wait(&mut self) -> Outcome<std::process::ExitStatus> {
        let status = image::qemu::wait_until(&mut self.child, Instant::now() + EXIT_TIMEOUT)
            .map_err(|error| Failure::new(format!("waiting for scripts/run: {error}")))?
            .ok_or_else(|| Failure::new("scripts/run still runs a minute after Ctrl-A X"))?;
        self.ended = true;
        Ok(status)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // SAFETY: kill(2) on the process group this test created, whose leader has not
        // been reaped (so the group id is still ours); no memory is involved.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn namespaces() -> Outcome<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|error| Failure::new(format!("ip netns list: {error}")))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn scripts_run_client_gives_a_namespace_that_pings_through_the_appliance_and_cleans_up() -> Outcome
{
    if !require_root("scripts_run_client_gives_a_namespace_that_pings_through_the_appliance")? {
        return Ok(());
    }
    let root = &workspace()?.root;
    let mut child = Command::new(root.join("scripts/run"))
        .args(["--client", "--accel", "tcg"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| Failure::new(format!("starting scripts/run --client: {error}")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut stdin = child.stdin.take();
    let mut script = Script {
        child,
        ended: false,
    };
    let console = Console::attach(stdout.ok_or_else(|| Failure::new("no stdout"))?);
    let messages = Console::attach(stderr.ok_or_else(|| Failure::new("no stderr"))?);

    console.wait_for_line("moat: ready", READY_TIMEOUT)?;
    let namespace =
        messages.wait_until("the client namespace's instructions", EXIT_TIMEOUT, |s| {
            s.lines.iter().find_map(|line| {
                let rest = line.strip_prefix(ANNOUNCEMENT)?;
                Some(Ok(rest.split_whitespace().next()?.to_string()))
            })
        })?;
    let told = messages.lines().join("\n");
    let ping_line = format!("ip netns exec {namespace} ping 10.0.2.2");
    ensure(told.contains(&ping_line), || {
        format!("the instructions do not say `{ping_line}`:\n{told}")
    })?;

    // What the instructions say to type: a ping through the appliance to the uplink's
    // gateway (QEMU user networking's 10.0.2.2, through NAT).
    let ping = Command::new("ip")
        .args([
            "netns", "exec", &namespace, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5",
        ])
        .arg("10.0.2.2")
        .output()
        .map_err(|error| Failure::new(format!("ping: {error}")))?;
    let ping_text = String::from_utf8_lossy(&ping.stdout);
    ensure(
        ping.status.success() && ping_text.contains(" 0% packet loss"),
        || format!("ping through the appliance from {namespace} failed:\n{ping_text}"),
    )?;

    // Ctrl-A X quits QEMU; the script then removes the namespace.
    if let Some(stdin) = stdin.as_mut() {
        stdin
            .write_all(b"\x01x")
            .map_err(|error| Failure::new(format!("typing Ctrl-A X: {error}")))?;
    }
    drop(stdin);
    let status = script.wait()?;
    ensure(!namespaces()?.contains(&namespace), || {
        format!("{namespace} is still there after scripts/run ended ({status})")
    })
}
