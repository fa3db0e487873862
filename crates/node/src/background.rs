//! Threads for waits that must not block the JS thread (the handoff's). Each JS environment (the
//! main thread or a worker) keeps a list of its threads; when the environment is torn down, every
//! one of them is cancelled and joined before Node frees the threadsafe functions they report
//! through, so no thread ever calls into an environment that is gone.

use napi::bindgen_prelude::*;
use reactor_core::handoff::{Canceller, WeakCanceller};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::thread::JoinHandle;

struct Job {
    /// Weak: a finished job's eventfd is closed with its thread, not kept until teardown.
    cancel: WeakCanceller,
    thread: JoinHandle<()>,
}

type Jobs = Rc<RefCell<Vec<Job>>>;

thread_local! {
    /// The jobs of the environment running on this thread (one at a time per thread).
    static JOBS: RefCell<Option<Jobs>> = const { RefCell::new(None) };
}

/// Runs `work` on a new thread named `name`; `work` gets the canceller that teardown fires.
pub fn spawn(
    env: &Env,
    name: &str,
    cancel: Canceller,
    work: impl FnOnce(&Canceller) + Send + 'static,
) -> napi::Result<()> {
    let jobs = registry(env)?;
    let weak = cancel.downgrade();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(&cancel))
        .map_err(|e: io::Error| crate::error::os_error(e, "spawn"))?;
    let mut jobs = jobs.borrow_mut();
    // Forget the threads that are done (joining them returns at once).
    let (done, running): (Vec<Job>, Vec<Job>) = jobs.drain(..).partition(|job| job.thread.is_finished());
    for job in done {
        let _ = job.thread.join();
    }
    *jobs = running;
    jobs.push(Job { cancel: weak, thread });
    Ok(())
}

/// This environment's job list, made (with its teardown hook) on first use.
fn registry(env: &Env) -> napi::Result<Jobs> {
    if let Some(jobs) = JOBS.with(|slot| slot.borrow().clone()) {
        return Ok(jobs);
    }
    let jobs: Jobs = Rc::new(RefCell::new(Vec::new()));
    env.add_env_cleanup_hook(jobs.clone(), |jobs| {
        let pending: Vec<Job> = jobs.borrow_mut().drain(..).collect();
        for job in &pending {
            job.cancel.cancel();
        }
        for job in pending {
            let _ = job.thread.join();
        }
        let _ = JOBS.try_with(|slot| slot.borrow_mut().take());
    })?;
    JOBS.with(|slot| *slot.borrow_mut() = Some(jobs.clone()));
    Ok(jobs)
}
