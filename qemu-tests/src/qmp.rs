//! A minimal QMP client (QEMU's JSON monitor protocol) over the VM's unix socket: enough to
//! press the ACPI power button and to ask the human monitor about a hung guest's CPU.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::{Failure, Outcome};

/// An open QMP session, past capability negotiation.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and leaves negotiation mode.
    pub fn connect(socket: &Path) -> Outcome<Qmp> {
        let fail =
            |error: std::io::Error| Failure::new(format!("QMP {}: {error}", socket.display()));
        let stream = UnixStream::connect(socket).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(fail)?;
        let writer = stream.try_clone().map_err(fail)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Failure::new(format!(
                "QMP: expected a greeting, got {greeting}"
            )));
        }
        qmp.execute("qmp_capabilities")?;
        Ok(qmp)
    }

    /// Runs `command` (no arguments) and waits for its return, skipping events.
    pub fn execute(&mut self, command: &str) -> Outcome<Value> {
        self.execute_with(command, Value::Null)
    }

    /// Runs `command` with `arguments` (an object, or null for none) and waits for its
    /// return, skipping events.
    pub fn execute_with(&mut self, command: &str, arguments: Value) -> Outcome<Value> {
        let mut request = serde_json::json!({ "execute": command });
        if !arguments.is_null() {
            request["arguments"] = arguments;
        }
        // One write: QEMU acts on the command as soon as the JSON object is complete, and a
        // command such as system_powerdown may end QEMU before a second write (the newline)
        // would go out.
        let request = format!("{request}\n");
        self.writer
            .write_all(request.as_bytes())
            .map_err(|error| Failure::new(format!("QMP {command}: {error}")))?;
        loop {
            let message = self.read_message()?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                return Err(Failure::new(format!("QMP {command} failed: {error}")));
            }
        }
    }

    fn read_message(&mut self) -> Outcome<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(Failure::new("QMP: QEMU closed the monitor")),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|error| Failure::new(format!("QMP: bad message {line:?}: {error}"))),
            Err(error) => Err(Failure::new(format!("QMP: {error}"))),
        }
    }
}
