//! `handoff.*`: hand listening sockets to a successor process, over reactor_core::handoff.
//!
//! Nothing here blocks the JS thread. Each wait (an offer waiting for its taker, a take waiting
//! for the offer's answer, ready() waiting for the acknowledgement) runs on a small dedicated
//! thread (background.rs), and its outcome comes back to JS through a threadsafe function, which
//! holds Node's loop open until it has been called (as a pending socket does). An offer's
//! `close()` wakes its thread through an eventfd and removes the path at once, on the JS thread;
//! environment teardown cancels and joins every such thread.

use crate::background;
use crate::error;
use crate::numbers;
use crate::teardown;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use reactor_core::handoff::{self, Canceller, Listener, OfferPath};
use reactor_core::socket2::Socket;
use reactor_core::sys::{errno, sockets};
use std::cell::RefCell;
use std::io;
use std::os::fd::IntoRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The connection on which a taker confirms readiness; taken out by `ready()` (once).
pub struct Control(Mutex<Option<Socket>>);

/// What JS receives when a background step ends: `code` (and `errno`, `message`, `syscall`) on failure;
/// for a take, the listeners (the fds now belong to JS) and the control connection.
#[napi(object, namespace = "handoff", object_from_js = false)]
pub struct Outcome {
    pub code: Option<String>,
    pub errno: Option<i32>,
    pub message: Option<String>,
    /// The step that failed ('offer', 'take', 'ready'), as a syscall error's `syscall`.
    pub syscall: Option<String>,
    pub listeners: Option<Vec<TakenListener>>,
    /// Opaque to JS (the generated types must not name the Rust type).
    #[napi(ts_type = "ExternalObject<unknown>")]
    pub control: Option<External<Control>>,
}

#[napi(object, namespace = "handoff", object_from_js = false)]
pub struct TakenListener {
    pub name: String,
    pub fd: i32,
    pub family: i32,
    #[napi(js_name = "type")]
    pub socket_type: i32,
    pub listening: bool,
}

/// What a background thread hands back; turned into an [`Outcome`] on the JS thread, so that
/// descriptors a torn-down environment never receives are closed rather than leaked.
struct Done {
    result: io::Result<Option<handoff::Taken>>,
    syscall: &'static str,
}

type DoneFn = ThreadsafeFunction<Done, (), Outcome, Status, false>;

fn done_fn(on_done: Function<'_, Outcome, ()>) -> napi::Result<DoneFn> {
    on_done.build_threadsafe_function::<Done>().callee_handled::<false>().build_callback(
        |ctx: ThreadsafeCallContext<Done>| Ok(outcome(ctx.value)),
    )
}

fn outcome(done: Done) -> Outcome {
    match done.result {
        Err(err) => {
            let (code, message) = error::os_message(&err, done.syscall);
            Outcome {
                code: Some(code),
                errno: errno::number(&err),
                message: Some(message),
                syscall: Some(done.syscall.to_owned()),
                listeners: None,
                control: None,
            }
        }
        Ok(None) => Outcome { code: None, errno: None, message: None, syscall: None, listeners: None, control: None },
        Ok(Some(taken)) => Outcome {
            code: None,
            errno: None,
            message: None,
            syscall: None,
            listeners: Some(taken.listeners.into_iter().map(taken_listener).collect()),
            control: Some(External::new(Control(Mutex::new(Some(taken.control))))),
        },
    }
}

fn taken_listener(listener: Listener) -> TakenListener {
    let info = sockets::info(std::os::fd::AsRawFd::as_raw_fd(&listener.fd)).ok();
    TakenListener {
        name: listener.name,
        family: info.as_ref().map_or(0, |i| i.family),
        socket_type: info.as_ref().map_or(0, |i| i.socket_type),
        listening: info.as_ref().is_some_and(|i| i.listening),
        fd: listener.fd.into_raw_fd(), // JS owns it from here on
    }
}

/// Runs `work` on its own thread (see background.rs) and reports its result through `on_done`.
fn in_background(
    env: &Env,
    name: &str,
    syscall: &'static str,
    on_done: DoneFn,
    cancel: Canceller,
    work: impl FnOnce(&Canceller) -> io::Result<Option<handoff::Taken>> + Send + 'static,
) -> napi::Result<()> {
    background::spawn(env, name, cancel, move |cancel| {
        let result = work(cancel);
        // A closing environment cannot take it: dropping `Done` closes what it holds.
        on_done.call(Done { result, syscall }, ThreadsafeFunctionCallMode::NonBlocking);
    })
}

fn new_canceller(syscall: &str) -> napi::Result<Canceller> {
    Canceller::new().map_err(|e| error::os_error(e, syscall))
}

/// A deadline `timeout_ms` from now; none for a negative timeout, or one too far away to
/// represent (checked conversions: no number JS can pass makes this panic).
fn deadline(timeout_ms: f64) -> Option<Instant> {
    handoff::deadline_after_ms(Instant::now(), timeout_ms)
}

/// Uids from JS: each an integer in 0..=u32::MAX, else a RangeError naming `option`.
fn uids(values: Vec<f64>, option: &str) -> napi::Result<Vec<u32>> {
    values
        .into_iter()
        .map(|uid| {
            crate::numbers::integer(uid)
                .and_then(|u| u32::try_from(u).ok())
                .ok_or_else(|| error::range_error("ERR_OUT_OF_RANGE", &format!("{option}: {uid} is not a uid")))
        })
        .collect()
}

/// The longest taker timeout: a day (a larger one would in effect wait for ever).
const MAX_TAKER_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// An open offer, as JS holds it.
#[napi(namespace = "handoff")]
pub struct NativeOffer {
    /// Dropped by close(), so the eventfd closes as soon as the offer's thread is done with it.
    cancel: RefCell<Option<Canceller>>,
    path: Arc<OfferPath>,
}

#[napi(namespace = "handoff")]
impl NativeOffer {
    /// Withdraws the offer: wakes its thread (which reports ECANCELED unless it was taken) and
    /// removes the path now. Idempotent; JS also calls it once the offer has ended, to let go of
    /// the eventfd.
    #[napi(catch_unwind)]
    pub fn close(&self) {
        if let Some(cancel) = self.cancel.borrow_mut().take() {
            cancel.cancel();
        }
        self.path.remove();
    }
}

/// Listens at `path` (0600) with duplicates of `fds`, and serves takers on a thread until one is
/// ready (`on_done` with no code) or the offer is closed (code ECANCELED). Each taker has
/// `taker_timeout_ms` from its connect to its ready (< 0: the default, 10 s).
#[napi(namespace = "handoff", catch_unwind)]
pub fn offer(
    env: Env,
    path: String,
    names: Vec<String>,
    fds: Vec<f64>,
    allow_uids: Vec<f64>,
    taker_timeout_ms: f64,
    on_done: Function<'_, Outcome, ()>,
) -> napi::Result<NativeOffer> {
    if names.len() != fds.len() {
        return Err(error::type_error("ERR_INVALID_ARG_VALUE", "names and fds differ in length"));
    }
    let mut listeners = Vec::with_capacity(fds.len());
    for (name, fd) in names.into_iter().zip(fds) {
        listeners.push((name, numbers::fd(fd, "offer")?));
    }
    let uids = uids(allow_uids, "allowUids")?;
    // Checked: NaN, negative or unrepresentable means the default; a huge one caps at a day.
    let taker_timeout = if taker_timeout_ms >= 0.0 {
        Duration::try_from_secs_f64(taker_timeout_ms / 1000.0).unwrap_or(MAX_TAKER_TIMEOUT).min(MAX_TAKER_TIMEOUT)
    } else {
        handoff::DEFAULT_TAKER_TIMEOUT
    };
    let done = done_fn(on_done)?;
    let offer = handoff::Offer::new(&path, &listeners, &uids)
        .map_err(|e| error::os_error(e, "offer"))?
        .with_taker_timeout(taker_timeout);
    let native = NativeOffer { cancel: RefCell::new(Some(offer.canceller())), path: offer.path() };
    // At environment teardown (process exit included) the path goes too.
    let guard = native.path.clone();
    teardown::at_exit(&env, move || guard.remove())?;
    let cancel = offer.canceller();
    let spawned = in_background(&env, "handoff-offer", "offer", done, cancel, move |_| offer.serve(|_| {}).map(|()| None));
    if let Err(err) = spawned {
        native.close();
        return Err(err);
    }
    Ok(native)
}

/// Connects to the offer at `path` and receives its listeners on a thread; `on_done` gets them
/// (or a code: ENOENT, ECONNREFUSED, ETIMEDOUT, EACCES, EPERM, ...). `timeout_ms` < 0: no
/// deadline. The offer must be made by our uid, root, or one of `trust_uids`.
#[napi(namespace = "handoff", catch_unwind)]
pub fn take(
    env: Env,
    path: String,
    timeout_ms: f64,
    trust_uids: Vec<f64>,
    on_done: Function<'_, Outcome, ()>,
) -> napi::Result<()> {
    let trusted = uids(trust_uids, "trustUids")?;
    let done = done_fn(on_done)?;
    let deadline = deadline(timeout_ms);
    let cancel = new_canceller("take")?;
    in_background(&env, "handoff-take", "take", done, cancel, move |cancel| {
        handoff::take(&path, &trusted, deadline, Some(cancel)).map(Some)
    })
}

/// Tells the offering process we serve the sockets; `on_done` once it acknowledged.
#[napi(namespace = "handoff", ts_args_type = "control: ExternalObject<unknown>, timeoutMs: number, onDone: (arg: handoff.Outcome) => void", catch_unwind)]
pub fn ready(
    env: Env,
    control: &External<Control>,
    timeout_ms: f64,
    on_done: Function<'_, Outcome, ()>,
) -> napi::Result<()> {
    let done = done_fn(on_done)?;
    let deadline = deadline(timeout_ms);
    let cancel = new_canceller("ready")?;
    let socket = control.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(socket) = socket else {
        return Err(error::coded_error("ERR_INVALID_STATE", "ready() was already called"));
    };
    in_background(&env, "handoff-ready", "ready", done, cancel, move |cancel| {
        handoff::confirm_ready(socket, deadline, Some(cancel)).map(|()| None)
    })
}
