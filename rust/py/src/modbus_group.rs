//! Many read plans in flight from one task (`hubgate.modbus.plan_group`): the
//! sockets in one private `epoll` set, and one call per wake (`step`) that
//! takes every answer that came, matches and decodes it, sends the frames it
//! lets out and times out the round trips past their deadline. A plan is made
//! and started in `add`, and one that ends with its values is counted and ends
//! its connection's turn (`Turn`) here too: a device costs Python only its
//! `add` and its values, or its outcome when the read fails.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::ints::Int;
use crate::modbus_batch::{PlanExchange, Pumped};
use crate::modbus_codec::TcpClientCodec;
use crate::modbus_stats::RequestStats;
use crate::modbus_values::ReadPlan;
use crate::socket_io::{epoll_add, epoll_new, epoll_ready};

/// Reports one `epoll_wait` takes at most.
const READY_AT_ONCE: usize = 256;

/// A Modbus TCP connection's turn (`hubgate.modbus.tcp_master`): one caller, or
/// one plan of a group, at a time.
#[pyclass(module = "hubgate._core")]
pub(crate) struct Turn {
    /// The connection is in use.
    #[pyo3(get, set)]
    busy: bool,
    /// When its last exchange ended (answered, failed or given up; Trio's clock).
    #[pyo3(get, set)]
    quiet_since: f64,
    /// Callers waiting for it (a plan that ends then leaves its end to Python,
    /// which hands the turn over).
    #[pyo3(get, set)]
    waiting: u32,
    /// Frames that answered no pending request.
    #[pyo3(get, set)]
    strays: u64,
}

#[pymethods]
impl Turn {
    #[new]
    fn new() -> Self {
        Self {
            busy: false,
            quiet_since: f64::NEG_INFINITY,
            waiting: 0,
            strays: 0,
        }
    }
}

/// One plan in flight (see `PlanGroup.add`).
struct Flight {
    index: usize,
    exchange: Py<PlanExchange>,
    turn: Py<Turn>,
    stats: Py<RequestStats>,
    /// Its values may end it here (`Flight::counted`): its master has no failed
    /// connection attempt to clear.
    clean: bool,
    codec: Py<TcpClientCodec>,
    fd: RawFd,
    timeout_s: f64,
    delay_s: f64,
    /// Called before frames go out (a command's fencing check).
    check: Option<Py<PyAny>>,
    /// When the round trip in flight times out, or the held frames go out.
    deadline: f64,
    /// When its first request went out (Trio's clock).
    started: f64,
    /// When the connection's last exchange ended (for the device's pause).
    quiet_since: f64,
    /// Frames are due at the next step.
    due: bool,
    /// The frames due wait for the device's pause to end (at `deadline`).
    held: bool,
    /// The peer hung up (`EPOLLRDHUP`): its socket is read to the end of file.
    hung_up: bool,
}

/// How a flight's step went: on, or ended with what Python is handed.
enum Went {
    On,
    Ended(Py<PyAny>),
}

impl Flight {
    /// Sends the frames due and takes what the socket holds (at `now`; frames
    /// held for the pause stay held), as `PlanInFlight` did in Python.
    fn advance(&mut self, py: Python<'_>, now: f64) -> PyResult<Went> {
        let hold = self.held;
        let chain = self.delay_s == 0.0 && self.check.is_none();
        let exchange = self.exchange.bind(py);
        let codec = self.codec.bind(py);
        let sent = exchange.borrow().rounds;
        let step = loop {
            if self.due && !hold {
                if let Some(check) = &self.check {
                    if let Err(error) = check.call0(py) {
                        return ended_by(py, error);
                    }
                }
            }
            let step =
                exchange
                    .borrow_mut()
                    .step_now(py, codec, self.fd, chain, hold, self.hung_up);
            let step = match step {
                Ok(step) => step,
                Err(error) => return ended_by(py, error),
            };
            if !hold {
                self.due = matches!(step, Pumped::Due);
            }
            if !matches!(step, Pumped::Due) || self.delay_s != 0.0 {
                break step;
            }
        };
        if exchange.borrow().rounds > sent {
            self.deadline = now + self.timeout_s;
        }
        Ok(match step {
            Pumped::Wait => Went::On,
            Pumped::Ended(step) => Went::Ended(exchange.borrow().outcome(py, step)?.unbind()),
            Pumped::Closed => Went::Ended(PyBytes::new(py, b"").into_any().unbind()),
            Pumped::Due => {
                // The answer that just came ended an exchange: the pause begins.
                self.quiet_since = now;
                return self.after_pause(py, now);
            }
        })
    }

    /// Sends the frames due once the connection has been quiet for the pause.
    fn after_pause(&mut self, py: Python<'_>, now: f64) -> PyResult<Went> {
        let ready = self.quiet_since + self.delay_s;
        if now < ready {
            self.held = true;
            self.deadline = ready;
            return Ok(Went::On);
        }
        self.advance(py, now)
    }

    /// At `deadline`: sends the frames held for the pause, else the round trip
    /// timed out (ended with `None`).
    fn due(&mut self, py: Python<'_>, now: f64) -> PyResult<Went> {
        if !self.held {
            return Ok(Went::Ended(py.None()));
        }
        self.held = false;
        if self.exchange.bind(py).borrow().rounds == 0 {
            self.started = now;
        }
        self.advance(py, now)
    }

    /// A plan that ended with its values (`value`, at `now`) while nobody waits
    /// for its connection is counted (each request at the mean round trip, not
    /// the pauses between them) and its turn ended here, as
    /// `hubgate.modbus.plan_flight.end_flight` would: true when it was.
    fn counted(&self, py: Python<'_>, value: &Py<PyAny>, now: f64) -> bool {
        if !self.clean || !value.bind(py).is_exact_instance_of::<PyList>() {
            return false;
        }
        let mut turn = self.turn.borrow_mut(py);
        if turn.waiting != 0 {
            return false;
        }
        let exchange = self.exchange.borrow(py);
        turn.strays += exchange.strays();
        turn.quiet_since = now;
        turn.busy = false;
        let rounds = exchange.rounds;
        let mut waited = now - self.started;
        if self.delay_s != 0.0 && rounds > 1 {
            waited -= f64::from(rounds - 1) * self.delay_s;
        }
        let answered = u64::try_from(exchange.answered()).unwrap_or(u64::MAX);
        self.stats
            .borrow_mut(py)
            .record_ok(waited / f64::from(rounds.max(1)), answered);
        true
    }
}

/// A flight ended by `error`: an `Exception` (the socket's `OSError`, a
/// `FrameError`, a failed check) is its outcome; anything else is raised.
fn ended_by(py: Python<'_>, error: PyErr) -> PyResult<Went> {
    if error.is_instance_of::<PyException>(py) {
        return Ok(Went::Ended(error.into_value(py).into_any()));
    }
    Err(error)
}

/// Read plans in flight over many sockets, driven from one task.
#[pyclass(module = "hubgate._core")]
pub(crate) struct PlanGroup {
    /// `None` once closed.
    epoll: Option<OwnedFd>,
    /// By socket (the `epoll` report's key).
    flights: HashMap<RawFd, Flight>,
    /// The sockets in the `epoll` set, each with its connection's codec: a socket
    /// stays in the set (edge-triggered: each arrival reports once) until it is
    /// closed, so a connection read again in a later group read of this group
    /// costs no `epoll_ctl`; a descriptor that now belongs to another connection
    /// (another codec) is added again.
    registered: HashMap<RawFd, Py<TcpClientCodec>>,
    ready: Vec<libc::epoll_event>,
}

impl PlanGroup {
    /// The `epoll` set; `ValueError` once closed.
    fn epoll(&self) -> PyResult<&OwnedFd> {
        self.epoll
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the PlanGroup is closed"))
    }

    /// Puts `fd` (of the connection with `codec`) in the `epoll` set unless it is.
    fn register(&mut self, py: Python<'_>, fd: RawFd, codec: &Py<TcpClientCodec>) -> PyResult<()> {
        if self
            .registered
            .get(&fd)
            .is_some_and(|known| known.is(codec))
        {
            return Ok(());
        }
        let key = u64::try_from(fd).unwrap_or(u64::MAX);
        if let Err(error) = epoll_add(self.epoll()?, fd, key) {
            if error.raw_os_error() != Some(libc::EEXIST) {
                return Err(error.into());
            }
        }
        self.registered.insert(fd, codec.clone_ref(py));
        Ok(())
    }

    /// The flight on `fd` ended with `value` at `now`: into `ended`, its
    /// exchange `None` when it was counted here (`Flight::counted`).
    fn end(
        &mut self,
        py: Python<'_>,
        fd: RawFd,
        value: Py<PyAny>,
        now: f64,
        ended: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        if let Some(flight) = self.flights.remove(&fd) {
            let exchange = if flight.counted(py, &value, now) {
                py.None().into_bound(py)
            } else {
                flight.exchange.into_bound(py).into_any()
            };
            ended.append(PyTuple::new(
                py,
                [
                    flight.index.into_pyobject(py)?.into_any(),
                    exchange,
                    value.into_bound(py),
                    flight.started.into_pyobject(py)?.into_any(),
                ],
            )?)?;
        }
        Ok(())
    }
}

#[pymethods]
impl PlanGroup {
    /// Raises `OSError` when no `epoll` set can be made (out of descriptors).
    #[new]
    fn new() -> PyResult<Self> {
        Ok(Self {
            epoll: Some(epoll_new()?),
            flights: HashMap::new(),
            registered: HashMap::new(),
            ready: Vec::with_capacity(READY_AT_ONCE),
        })
    }

    /// Starts `plan` to `unit` (at most `window` of its requests in flight,
    /// `PlanExchange`) over the connected, non-blocking socket `fd` of the
    /// connection with `codec` and `turn` (taken here) at `now` (Trio's
    /// clock; its first frames once the connection has been quiet for
    /// `delay_s`), each round trip answered within `timeout_s`, `check()`
    /// called before frames go out when given; counted in `stats`, and ended
    /// here when it ends with its values and `clean` (`Flight::counted`).
    /// Returns `None` while it is in flight (`step` hands over its end), else
    /// what `step` hands over for it at once. Raises `EncodeError` for a plan
    /// the codec refuses, `ValueError` for a socket with a plan in flight.
    #[pyo3(signature = (index, unit, plan, window, codec, fd, now, timeout_s, delay_s, turn, stats, clean, check))]
    #[allow(clippy::too_many_arguments)]
    fn add<'py>(
        &mut self,
        py: Python<'py>,
        index: usize,
        unit: Int<u8>,
        plan: Bound<'py, ReadPlan>,
        window: Int<u16>,
        codec: Py<TcpClientCodec>,
        fd: RawFd,
        now: f64,
        timeout_s: f64,
        delay_s: f64,
        turn: Py<Turn>,
        stats: Py<RequestStats>,
        clean: bool,
        check: Option<Py<PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        if self.flights.contains_key(&fd) {
            return Err(PyValueError::new_err(format!(
                "socket {fd} has a plan in flight"
            )));
        }
        let requests = plan.get().requests_of();
        let exchange = PlanExchange::of(*unit, requests, usize::from(*window), Some(plan.unbind()))
            .map_err(PyErr::from)?;
        let exchange = Py::new(py, exchange)?;
        let quiet_since = {
            let mut turn = turn.borrow_mut(py);
            turn.busy = true;
            turn.quiet_since
        };
        let registered = self.register(py, fd, &codec);
        let mut flight = Flight {
            index,
            exchange,
            turn,
            stats,
            clean,
            codec,
            fd,
            timeout_s,
            delay_s,
            check,
            deadline: now + timeout_s,
            started: now,
            quiet_since,
            due: true,
            held: false,
            hung_up: false,
        };
        let went = match registered {
            Err(error) => ended_by(py, error)?,
            Ok(()) if delay_s != 0.0 => flight.after_pause(py, now)?,
            Ok(()) => flight.advance(py, now)?,
        };
        self.flights.insert(fd, flight);
        let Went::Ended(value) = went else {
            return Ok(None);
        };
        let ended = PyList::empty(py);
        self.end(py, fd, value, now, &ended)?;
        Ok(Some(ended.get_item(0)?.cast_into::<PyTuple>()?))
    }

    /// Takes what every socket in flight holds and sends what the answers let
    /// out, then times out the round trips past their deadline and sends the
    /// frames whose pause ended (at `now`, Trio's clock). Returns the plans that
    /// ended, each `(index, exchange, value, started)`, `exchange` None when it
    /// was counted and its turn ended here: `value` the fields' values,
    /// a `Response.Exception` or a `ResponseRejected` (as `PlanExchange.receive`),
    /// `b""` (the device closed the connection), the `Exception` that ended it
    /// (the socket's `OSError`, a `FrameError`, what `check` raised) or `None`
    /// (the round trip timed out); `started` when its first request went out.
    fn step<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyList>> {
        let ended = PyList::empty(py);
        let mut ready = std::mem::take(&mut self.ready);
        let readiness = self.epoll().map(|epoll| epoll_ready(epoll, &mut ready));
        let hangup = (libc::EPOLLRDHUP | libc::EPOLLHUP) as u32;
        let keys: Vec<(u64, bool)> = ready
            .iter()
            .map(|event| (event.u64, event.events & hangup != 0))
            .collect();
        self.ready = ready;
        readiness??;
        for (key, hung_up) in keys {
            let fd = RawFd::try_from(key).unwrap_or(-1);
            let Some(flight) = self.flights.get_mut(&fd) else {
                continue; // a late answer to a plan that ended
            };
            flight.hung_up |= hung_up;
            if let Went::Ended(value) = flight.advance(py, now)? {
                self.end(py, fd, value, now, &ended)?;
            }
        }
        let due: Vec<RawFd> = self
            .flights
            .values()
            .filter(|flight| flight.deadline <= now)
            .map(|flight| flight.fd)
            .collect();
        for fd in due {
            let Some(flight) = self.flights.get_mut(&fd) else {
                continue;
            };
            if let Went::Ended(value) = flight.due(py, now)? {
                self.end(py, fd, value, now, &ended)?;
            }
        }
        Ok(ended)
    }

    /// Ends every plan still in flight (given up): each `(index, exchange, started)`.
    fn give_up<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let given_up = PyList::empty(py);
        for (_, flight) in self.flights.drain() {
            given_up.append((flight.index, flight.exchange, flight.started))?;
        }
        Ok(given_up)
    }

    /// When the first plan in flight is due (`step`): a round trip's deadline
    /// or the end of a pause; `inf` when none is in flight.
    #[getter]
    fn next_deadline(&self) -> f64 {
        self.flights
            .values()
            .map(|flight| flight.deadline)
            .fold(f64::INFINITY, f64::min)
    }

    /// Plans in flight.
    #[getter]
    fn live(&self) -> usize {
        self.flights.len()
    }

    /// The `epoll` set's descriptor: readable once a socket in flight is.
    fn fileno(&self) -> PyResult<RawFd> {
        Ok(self.epoll()?.as_raw_fd())
    }

    /// Closes the `epoll` set (the sockets stay open); plans still in flight are
    /// dropped without an outcome (`give_up` first).
    fn close(&mut self) {
        self.flights.clear();
        self.registered.clear();
        self.epoll = None;
    }
}
