//! Sequences of hostile frames across the appliance's NICs, with an advancing clock, driven
//! through `Appliance::receive` under compiled rulesets; every frame that comes out is held
//! to the invariants of `dataplane_fuzz::oracle` (see the crate documentation).
//!
//! Run (seeds in `seeds/appliance`, new inputs go to `corpus/appliance`):
//! `cd kernel/dataplane/fuzz && cargo +nightly fuzz run appliance corpus/appliance seeds/appliance`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|scenario: dataplane_fuzz::Scenario| {
    dataplane_fuzz::run(&scenario);
});
