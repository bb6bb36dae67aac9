//! Any input, as a ruleset: the whole compiler (parser, checker, analysis, lowering,
//! self-tests) and `explain` must report problems, never panic.
//!
//! Run (the seeds are the shipped rulesets; new inputs go to `corpus/compile`):
//! `cd rules/fuzz && cargo +nightly fuzz run compile corpus/compile seeds -- -dict=rules.dict`
#![no_main]

use libfuzzer_sys::fuzz_target;
use rules::source::SourceFile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = SourceFile::new("fuzz.rules", text.as_ref());
    match rules::compile_untested(file) {
        Ok(compiled) => {
            let _ = rules::selftest::run_tests(&compiled.file, &compiled.checked, &compiled.policy.as_policy());
            // Each line also serves as a packet description for `explain`.
            for line in text.lines().take(4) {
                let _ = rules::explain::explain(&compiled.file, &compiled.checked, &compiled.policy.as_policy(), line);
            }
            let _ = rules::emit::kernel_source(&compiled.policy.as_policy());
        }
        Err(e) => {
            let _ = e.render();
        }
    }
});
