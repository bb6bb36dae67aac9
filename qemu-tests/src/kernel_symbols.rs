//! The kernel ELF's function symbols (the release profile keeps them), for naming the code
//! addresses a hung guest's CPU is at: read with binutils' `nm`, looked up by address.

use std::path::Path;
use std::process::Command;

use crate::{Failure, Outcome};

/// A function's start, size and (demangled) name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Symbol {
    start: u64,
    size: u64,
    name: String,
}

/// The code symbols of one ELF, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct KernelSymbols {
    symbols: Vec<Symbol>,
}

impl KernelSymbols {
    /// Reads the symbols of `elf` with `nm` (binutils).
    pub fn read(elf: &Path) -> Outcome<KernelSymbols> {
        let output = Command::new("nm")
            .args([
                "--numeric-sort",
                "--print-size",
                "--demangle",
                "--defined-only",
            ])
            .arg(elf)
            .output()
            .map_err(|error| Failure::new(format!("running nm (install binutils): {error}")))?;
        if !output.status.success() {
            return Err(Failure::new(format!(
                "nm {}: {}",
                elf.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(KernelSymbols::parse(&String::from_utf8_lossy(
            &output.stdout,
        )))
    }

    /// Reads `nm --numeric-sort --print-size` output; keeps code symbols that have a size.
    pub fn parse(listing: &str) -> KernelSymbols {
        let mut symbols: Vec<Symbol> = listing
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(4, ' ');
                let start = u64::from_str_radix(fields.next()?, 16).ok()?;
                let size = u64::from_str_radix(fields.next()?, 16).ok()?;
                let kind = fields.next()?;
                let name = fields.next()?.to_string();
                matches!(kind, "t" | "T" | "w" | "W").then_some(Symbol { start, size, name })
            })
            .collect();
        symbols.sort_by_key(|symbol| symbol.start);
        KernelSymbols { symbols }
    }

    /// `name+0xoffset` for a code address, or `None` outside every function.
    pub fn name(&self, address: u64) -> Option<String> {
        let index = self
            .symbols
            .partition_point(|symbol| symbol.start <= address)
            .checked_sub(1)?;
        let symbol = &self.symbols[index];
        (address < symbol.start + symbol.size)
            .then(|| format!("{}+{:#x}", symbol.name, address - symbol.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_named_by_the_function_that_holds_them() {
        let symbols = KernelSymbols::parse(
            "0000000000100000 0000000000000010 T _start\n\
             0000000000100020 0000000000000100 t moat_kernel::interrupts::interrupt_dispatch\n\
             0000000000200000 0000000000000008 D SOME_DATA\n\
             0000000000100200 U undefined_has_no_size\n",
        );
        assert_eq!(symbols.name(0x100004).as_deref(), Some("_start+0x4"));
        assert_eq!(
            symbols.name(0x100030).as_deref(),
            Some("moat_kernel::interrupts::interrupt_dispatch+0x10")
        );
        // Between functions, in data, before everything: nothing.
        assert_eq!(symbols.name(0x100018), None);
        assert_eq!(symbols.name(0x200000), None);
        assert_eq!(symbols.name(0x1000), None);
    }
}
