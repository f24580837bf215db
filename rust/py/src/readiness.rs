//! The brief block before Trio's wait (`hubgate.modbus.readiness`): the rules
//! for a block and a socket's recent answer times, with the facts of the Trio
//! run they need (its clock, first deadline, the task's cancellation, the run
//! queue) read here in one go, so a read plan's round trip costs no Python
//! call for them (`PlanExchange.drive`).

use std::cell::Cell;
use std::os::fd::RawFd;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple, PyType};

use crate::socket_io::poll_events;

/// About the longest the other tasks of the run are kept waiting by brief
/// blocks in a row.
const SLICE_S: f64 = 0.02;
/// Waits the Trio way once more than half of a socket's recent blocks missed.
const SKIP_AFTER_MISSES: u32 = 64;
/// The shortest brief block (see `hubgate.modbus.readiness`).
const BLOCK_FLOOR_S: f64 = 0.005;
/// How long a new socket's answers are taken to take.
const FIRST_GUESS_S: f64 = 0.001;

thread_local! {
    /// When this thread's Trio run last passed through its scheduler for a
    /// wait of `hubgate.modbus.readiness` (`monotonic`).
    static LAST_PASS: Cell<f64> = const { Cell::new(f64::NEG_INFINITY) };
}

/// `CLOCK_MONOTONIC` in seconds: `time.perf_counter` on Linux, and so the
/// clock of Trio's `SystemClock` less its offset.
pub(crate) fn monotonic() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: one valid `timespec`; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    #[allow(clippy::cast_precision_loss)]
    let seconds = now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9;
    seconds
}

/// Marks a pass through Trio's scheduler now (a wait of this module's
/// callers); returns the time (`time.perf_counter`'s clock).
#[pyfunction]
pub(crate) fn mark_pass() -> f64 {
    let now = monotonic();
    LAST_PASS.set(now);
    now
}

/// What a brief block's rules need from the Trio run, read at once.
pub(crate) struct Facts {
    /// Trio's clock.
    pub(crate) now: f64,
    /// The run's first deadline (any task's sleep or cancel scope; inf: none).
    timer: f64,
    /// This task is cancelled.
    cancelled: bool,
    /// Tasks in the run queue.
    runnable: usize,
    /// The `SystemClock`'s offset (Trio's clock is `monotonic` plus it), or
    /// None for another clock (a test's).
    offset: Option<f64>,
}

/// Where the facts of the Trio run are read: its runner (not public, read
/// attribute by attribute), or the public calls where the runner is not as
/// expected (another Trio).
#[pyclass(module = "hubgate._core", frozen)]
pub(crate) struct TrioRun {
    /// `trio._core._run.GLOBAL_RUN_CONTEXT` (per thread: its `runner`, `task`).
    context: Option<Py<PyAny>>,
    /// Trio's `SystemClock` type (None: the runner's clock is called).
    system_clock: Option<Py<PyType>>,
    /// `() -> (now, first deadline, cancelled, runnable)` by the public calls.
    public: Py<PyAny>,
}

impl TrioRun {
    /// The facts of this thread's run now.
    pub(crate) fn read(&self, py: Python<'_>) -> PyResult<Facts> {
        if let Some(context) = &self.context {
            if let Ok(facts) = self.read_runner(py, context.bind(py)) {
                return Ok(facts);
            }
        }
        let (now, timer, cancelled, runnable): (f64, f64, bool, usize) =
            self.public.bind(py).call0()?.extract()?;
        Ok(Facts {
            now,
            timer,
            cancelled,
            runnable,
            offset: None,
        })
    }

    /// Trio's clock now, after `facts` were read.
    pub(crate) fn now_after(&self, py: Python<'_>, facts: &Facts) -> PyResult<f64> {
        match facts.offset {
            Some(offset) => Ok(offset + monotonic()),
            None => Ok(self.read(py)?.now),
        }
    }

    fn read_runner(&self, py: Python<'_>, context: &Bound<'_, PyAny>) -> PyResult<Facts> {
        let runner = context.getattr(intern!(py, "runner"))?;
        let clock = runner.getattr(intern!(py, "clock"))?;
        let system = self.system_clock.as_ref();
        let (now, offset) = if system.is_some_and(|t| clock.get_type().is(t.bind(py))) {
            let offset: f64 = clock.getattr(intern!(py, "offset"))?.extract()?;
            (offset + monotonic(), Some(offset))
        } else {
            let now: f64 = clock.call_method0(intern!(py, "current_time"))?.extract()?;
            (now, None)
        };
        let deadlines = runner.getattr(intern!(py, "deadlines"))?;
        let heap = deadlines
            .getattr(intern!(py, "_heap"))?
            .cast_into::<PyList>()?;
        let mut timer = f64::INFINITY;
        if !heap.is_empty() {
            // (deadline, id, cancel scope): stale when the scope's deadline moved
            let first = heap.get_item(0)?.cast_into::<PyTuple>()?;
            let deadline: f64 = first.get_item(0)?.extract()?;
            let registered: f64 = first
                .get_item(2)?
                .getattr(intern!(py, "_registered_deadline"))?
                .extract()?;
            timer = if deadline == registered {
                deadline
            } else {
                deadlines
                    .call_method0(intern!(py, "next_deadline"))?
                    .extract()?
            };
        }
        let cancelled: bool = context
            .getattr(intern!(py, "task"))?
            .getattr(intern!(py, "_cancel_status"))?
            .getattr(intern!(py, "effectively_cancelled"))?
            .extract()?;
        let runnable = runner.getattr(intern!(py, "runq"))?.len()?;
        Ok(Facts {
            now,
            timer,
            cancelled,
            runnable,
            offset,
        })
    }
}

#[pymethods]
impl TrioRun {
    /// `context`: Trio's per-thread run state (None: only the public calls),
    /// `system_clock` its `SystemClock` type; `public()` returns the facts by
    /// Trio's public calls.
    #[new]
    #[pyo3(signature = (context, system_clock, public))]
    fn new(
        context: Option<Py<PyAny>>,
        system_clock: Option<Py<PyType>>,
        public: Py<PyAny>,
    ) -> Self {
        Self {
            context,
            system_clock,
            public,
        }
    }

    /// (Trio's clock, the run's first deadline, this task cancelled, tasks
    /// runnable), as the brief blocks read them.
    fn facts(&self, py: Python<'_>) -> PyResult<(f64, f64, bool, usize)> {
        let facts = self.read(py)?;
        Ok((facts.now, facts.timer, facts.cancelled, facts.runnable))
    }
}

/// The brief block's state of one socket (see `hubgate.modbus.readiness`).
#[pyclass(module = "hubgate._core", subclass)]
pub(crate) struct BriefWait {
    fd: RawFd,
    run: Py<TrioRun>,
    /// How long waits for this socket took lately (a moving average).
    #[pyo3(get, set)]
    answer_s: f64,
    /// Waits that ended in a brief block, without Trio's scheduler.
    #[pyo3(get)]
    brief_answers: u64,
    /// The share of recent brief blocks that ended without an answer.
    #[pyo3(get)]
    miss_rate: f64,
    /// The last brief block ended without an answer: Trio's wait follows.
    missed: bool,
    /// Waits left the Trio way before the next brief block.
    skip: u32,
}

impl BriefWait {
    /// How long brief blocks may wait from `now` (see `window`), with the
    /// run's `facts`.
    pub(crate) fn window_at(&mut self, deadline: f64, now: f64, facts: &Facts) -> Option<f64> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let left = SLICE_S - (monotonic() - LAST_PASS.get());
        if 2.0 * self.answer_s > left {
            return None; // the slice would end first
        }
        if facts.timer <= now || facts.cancelled {
            return None; // a sleep or a scope is due, or cancelled: Trio's wait
        }
        if deadline <= now {
            return Some(0.0);
        }
        if facts.runnable > 0 {
            return None; // another task's turn: Trio's wait
        }
        Some(left.min(deadline - now).min(facts.timer - now))
    }

    pub(crate) fn run<'py>(&self, py: Python<'py>) -> &Bound<'py, TrioRun> {
        self.run.bind(py)
    }
}

#[pymethods]
impl BriefWait {
    /// Brief blocks on the file descriptor `fd`, the run's facts read as
    /// `run` says.
    #[new]
    fn new(fd: RawFd, run: Py<TrioRun>) -> Self {
        Self {
            fd,
            run,
            answer_s: FIRST_GUESS_S,
            brief_answers: 0,
            miss_rate: 0.0,
            missed: false,
            skip: 0,
        }
    }

    /// The longest the other tasks are kept waiting by brief blocks in a row.
    #[classattr]
    const SLICE_S: f64 = SLICE_S;

    /// The file descriptor waited for.
    #[getter]
    fn fd(&self) -> RawFd {
        self.fd
    }

    /// How long one brief block waits at most: twice `answer_s`, at least the
    /// floor (within the `window`).
    #[getter]
    pub(crate) fn block_s(&self) -> f64 {
        (2.0 * self.answer_s).max(BLOCK_FLOOR_S)
    }

    /// How long brief blocks may wait for this socket from `now` (Trio's clock,
    /// s), each at most `block_s`: None when the wait is Trio's to make, 0.0
    /// when `deadline` passed. The caller records how they went (`caught`,
    /// `miss`).
    fn window(&mut self, py: Python<'_>, deadline: f64, now: f64) -> PyResult<Option<f64>> {
        let facts = self.run.get().read(py)?;
        Ok(self.window_at(deadline, now, &facts))
    }

    /// A brief block until the socket is readable: True once it is, False once
    /// Trio's clock reached `deadline`, None when the wait is Trio's to make.
    fn briefly(&mut self, py: Python<'_>, deadline: f64) -> PyResult<Option<bool>> {
        let facts = self.run.get().read(py)?;
        let Some(within) = self.window_at(deadline, facts.now, &facts) else {
            return Ok(None);
        };
        if within <= 0.0 {
            return Ok(Some(false));
        }
        let began = monotonic();
        let block = self.block_s();
        let wait = within.min(block);
        #[allow(clippy::cast_possible_truncation)]
        let millis = (wait * 1000.0).ceil() as i32;
        let events = poll_events(py, self.fd, millis)?;
        if events != 0 {
            if events & libc::POLLNVAL != 0 {
                return Ok(None); // closed: Trio's wait raises the error it names
            }
            self.caught(monotonic() - began);
            return Ok(Some(true));
        }
        if within >= block {
            self.miss(); // else cut short by the window (a timer due): no miss
        }
        Ok(None)
    }

    /// A brief block caught the answer after `seconds`.
    pub(crate) fn caught(&mut self, seconds: f64) {
        self.answer_s += (seconds - self.answer_s) / 8.0;
        self.miss_rate -= self.miss_rate / 8.0;
        self.brief_answers += 1;
    }

    /// A brief block ended without an answer (within twice `answer_s` or
    /// longer): Trio's wait follows.
    pub(crate) fn miss(&mut self) {
        self.answer_s += self.answer_s / 8.0; // at least that long
        self.miss_rate += (1.0 - self.miss_rate) / 8.0;
        if self.miss_rate > 0.5 {
            self.skip = SKIP_AFTER_MISSES;
        }
        self.missed = true;
    }

    /// Whether the last brief block missed (Trio's wait follows, no other
    /// block first); cleared.
    fn take_missed(&mut self) -> bool {
        std::mem::take(&mut self.missed)
    }
}
