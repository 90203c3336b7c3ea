//! The cross-core engine for OS threads: one persistent worker thread per requested logical CPU,
//! pinned to it, fed one job per [`Pool::run`] call.
//!
//! A job is `body(role)` behind a common start barrier (a spin counter every role increments and
//! waits on), so the roles enter `body` together, as on bare metal. The caller blocks on a
//! condition variable (it must not spin: on a 2-core machine a spinning caller would steal a
//! core from a worker) until every role has finished or the time bound passed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::sys;

/// `body` with its lifetime erased. Only [`Pool::run`] makes one, and it does not return while
/// a worker may still call it (see there).
#[derive(Clone, Copy)]
struct BodyPtr(*const (dyn Fn(usize) + Sync + 'static));
// SAFETY: the pointee is `Sync`, so calling it from several threads at once is allowed; the
// pointer is only dereferenced while `Pool::run` keeps the pointee alive.
unsafe impl Send for BodyPtr {}

struct Job {
    role: usize,
    body: BodyPtr,
    run: Arc<RunState>,
}

/// Shared by the caller and the workers of one `run` call.
struct RunState {
    /// Roles that arrived at the start barrier.
    arrived: AtomicUsize,
    roles: usize,
    /// Per role: finished (and how).
    done: Mutex<Vec<Option<Result<(), String>>>>,
    cv: Condvar,
}

struct Worker {
    cpu: usize,
    mailbox: Arc<(Mutex<Option<Job>>, Condvar)>,
    /// The worker is running (or stuck in) a job.
    busy: bool,
}

/// Persistent pinned workers, keyed by OS CPU number (several per CPU when a caller asks for
/// the same CPU twice).
pub struct Pool {
    workers: Vec<Worker>,
    pin: bool,
}

/// What a `run` call ended with.
pub enum Outcome {
    Finished,
    /// These roles panicked (message per role).
    Panicked(Vec<(usize, String)>),
    /// These roles had not finished at the bound; `late_ok` says whether they finished within the
    /// grace period after it (if not, the caller must not free what `body` uses: see `run`).
    Stuck {
        roles: Vec<usize>,
        late_ok: bool,
    },
}

impl Pool {
    pub fn new(pin: bool) -> Pool {
        Pool {
            workers: Vec::new(),
            pin,
        }
    }

    fn worker_for(&mut self, cpu: usize, taken: &[usize]) -> usize {
        if let Some(i) = self
            .workers
            .iter()
            .enumerate()
            .position(|(i, w)| w.cpu == cpu && !w.busy && !taken.contains(&i))
        {
            return i;
        }
        let mailbox: Arc<(Mutex<Option<Job>>, Condvar)> = Arc::new(Default::default());
        let mb = mailbox.clone();
        let pin = self.pin;
        thread::Builder::new()
            .name(format!("atomprobe-cpu{cpu}"))
            .spawn(move || worker_main(cpu, pin, mb))
            .expect("spawning a probe worker thread");
        self.workers.push(Worker {
            cpu,
            mailbox,
            busy: false,
        });
        self.workers.len() - 1
    }

    /// Run `body(role)` on OS CPUs `cpus[role]`; wait at most `timeout` (then `grace` more).
    ///
    /// Returns only when every role finished, or — with `Outcome::Stuck { late_ok: false }` —
    /// when some role is still running `body` after `timeout + grace`. In that last case `body`
    /// may still be called: the caller must end the process without returning into code that
    /// frees what `body` borrows (the hosted platform does exactly that).
    pub fn run(
        &mut self,
        cpus: &[usize],
        timeout: Duration,
        grace: Duration,
        body: &(dyn Fn(usize) + Sync),
    ) -> Outcome {
        let run = Arc::new(RunState {
            arrived: AtomicUsize::new(0),
            roles: cpus.len(),
            done: Mutex::new(vec![None; cpus.len()]),
            cv: Condvar::new(),
        });
        // SAFETY: only the lifetime is erased. Every job holding this pointer has finished when
        // this function returns, except in the `late_ok: false` case, whose contract (above)
        // makes the caller end the process instead of freeing `body`'s borrows.
        let body = BodyPtr(unsafe {
            core::mem::transmute::<
                *const (dyn Fn(usize) + Sync + '_),
                *const (dyn Fn(usize) + Sync + 'static),
            >(body as *const _)
        });
        let mut used = Vec::with_capacity(cpus.len());
        for (role, &cpu) in cpus.iter().enumerate() {
            let w = self.worker_for(cpu, &used);
            used.push(w);
            self.workers[w].busy = true;
            let (lock, cv) = &*self.workers[w].mailbox;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job {
                role,
                body,
                run: run.clone(),
            });
            cv.notify_one();
        }
        let start = Instant::now();
        let mut done = run.done.lock().unwrap_or_else(|e| e.into_inner());
        let mut bound = timeout;
        let mut timed_out = false;
        let mut late = Vec::new();
        loop {
            if done.iter().all(Option::is_some) {
                break;
            }
            let elapsed = start.elapsed();
            if elapsed >= bound {
                if timed_out {
                    // Still stuck after the grace period.
                    let roles = stuck_roles(&done);
                    for &r in &roles {
                        // Never reuse a worker that may still be inside `body`.
                        self.workers[used[r]].cpu = usize::MAX;
                    }
                    for (r, &w) in used.iter().enumerate() {
                        if !roles.contains(&r) {
                            self.workers[w].busy = false;
                        }
                    }
                    return Outcome::Stuck {
                        roles,
                        late_ok: false,
                    };
                }
                timed_out = true;
                late = stuck_roles(&done);
                bound = timeout + grace;
                continue;
            }
            done = run
                .cv
                .wait_timeout(done, bound - elapsed)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        for &w in &used {
            self.workers[w].busy = false;
        }
        if timed_out {
            // Finished, but only after the bound: report which roles were late.
            return Outcome::Stuck {
                roles: late,
                late_ok: true,
            };
        }
        let panicked: Vec<(usize, String)> = done
            .iter()
            .enumerate()
            .filter_map(|(r, d)| match d {
                Some(Err(m)) => Some((r, m.clone())),
                _ => None,
            })
            .collect();
        if panicked.is_empty() {
            Outcome::Finished
        } else {
            Outcome::Panicked(panicked)
        }
    }
}

fn stuck_roles(done: &[Option<Result<(), String>>]) -> Vec<usize> {
    done.iter()
        .enumerate()
        .filter(|(_, d)| d.is_none())
        .map(|(r, _)| r)
        .collect()
}

fn worker_main(cpu: usize, pin: bool, mailbox: Arc<(Mutex<Option<Job>>, Condvar)>) {
    if pin {
        // Failure to pin (e.g. a CPU outside a container's cpuset) leaves the thread unpinned;
        // the platform only offers CPUs from the process's own affinity mask.
        let _ = sys::pin_current_thread(cpu);
    }
    let (lock, cv) = &*mailbox;
    loop {
        let job = {
            let mut slot = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = slot.take() {
                    break job;
                }
                slot = cv.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        };
        let run = &job.run;
        run.arrived.fetch_add(1, Ordering::AcqRel);
        while run.arrived.load(Ordering::Acquire) < run.roles {
            core::hint::spin_loop();
        }
        let body = job.body;
        let result = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `Pool::run` keeps the pointee alive until this job reports completion
            // (below), or ends the process (see `Pool::run`).
            let f = unsafe { &*body.0 };
            f(job.role)
        }))
        .map_err(|p| {
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string())
        });
        let mut done = run.done.lock().unwrap_or_else(|e| e.into_inner());
        done[job.role] = Some(result);
        run.cv.notify_all();
    }
}
