//! Test support shared by the integration tests that drive the families through a test
//! [`probes::platform::Platform`].

use std::sync::Barrier;

use probes::platform::RunError;

/// `Platform::run_on` on real threads: role `r` of `cpus.len()` runs `body(r)`, role 0 on the
/// calling thread, every role released by one barrier (the tear reader waits for its writers to
/// start, so the roles must really run at the same time).
pub fn run_on_threads(cpus: &[usize], body: &(dyn Fn(usize) + Sync)) -> Result<(), RunError> {
    let barrier = Barrier::new(cpus.len());
    std::thread::scope(|s| {
        for role in 1..cpus.len() {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                body(role);
            });
        }
        barrier.wait();
        body(0);
    });
    Ok(())
}
