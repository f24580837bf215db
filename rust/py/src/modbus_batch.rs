//! A read plan (or one request: a write) over a `TcpClientCodec` in few calls:
//! every frame encoded, every response matched and every field decoded in Rust
//! (`hubgate.modbus.tcp_master`); over a socket, its round trips in one call
//! while the answers come quickly (`run_on`).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use hubgate_core::modbus::batch::{Batch, Failure, Step};
use hubgate_core::modbus::pdu;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

use crate::errors::CoreError;
use crate::ints::Int;
use crate::modbus_codec::{request_of, ResponseRejected, TcpClientCodec};
use crate::modbus_pdu::{Request, Response};
use crate::modbus_values::{decode_blocks, ReadPlan};
use crate::readiness::BriefWait;
use crate::socket_io::{poll_readable, recv_now, send_now, Received};

/// Bytes one `recv` takes at most (a response is at most 260).
const RECV_BYTES: usize = 4096;

/// Where a step that does not wait left a plan.
pub(crate) enum Pumped {
    /// Waiting for the socket.
    Wait,
    /// Frames fell due and were not sent (not `chain`).
    Due,
    /// The plan ended (`Step::Done` or `Step::Failed`).
    Ended(Step),
    /// The device closed the connection.
    Closed,
}

/// The requests of one `ReadPlan` to one unit, at most `window` in flight, or
/// one request (`PlanExchange.request`).
#[pyclass(module = "hubgate._core")]
pub(crate) struct PlanExchange {
    batch: Batch,
    /// `None`: one request, whose response is the outcome.
    plan: Option<Py<ReadPlan>>,
    scratch: Vec<u8>,
    /// The batch was started (its first frames encoded).
    begun: bool,
    /// Frames sent so far (each of the frames the window let out).
    pub(crate) rounds: u32,
    /// The last round trips' wait ended without an answer after a whole block.
    missed: bool,
    /// `drive`: Trio's clock when its first call began.
    started: f64,
    /// `drive`: when the round trip in flight times out (Trio's clock).
    deadline: f64,
    /// `drive`: Trio's clock when its last call returned.
    ended: f64,
}

impl PlanExchange {
    pub(crate) fn of(
        unit: u8,
        requests: Vec<pdu::Request>,
        window: usize,
        plan: Option<Py<ReadPlan>>,
    ) -> Result<Self, CoreError> {
        Ok(Self {
            batch: Batch::new(unit, requests, window)?,
            plan,
            scratch: Vec::new(),
            begun: false,
            rounds: 0,
            missed: false,
            started: f64::NAN,
            deadline: f64::NAN,
            ended: f64::NAN,
        })
    }

    /// Starts the batch on the first call (its first frames encoded): `Err`
    /// with the step when it ended at once (a plan without requests); else
    /// whether frames may be sent and whether the socket is to be read
    /// before a wait (`pump`'s state: frames due go first, then the wait).
    fn begin(
        &mut self,
        codec: &Bound<'_, TcpClientCodec>,
        hold: bool,
    ) -> Result<(bool, bool), Step> {
        if !self.begun {
            self.begun = true;
            self.scratch.clear();
            let step = self
                .batch
                .start(&mut codec.borrow_mut().codec, &mut self.scratch);
            if step != Step::Send {
                return Err(step);
            }
        }
        let due = !self.scratch.is_empty() && !hold; // else called again after a wait
        Ok((due, !due))
    }

    /// Sends the frames due (only while `may_send`; then only when `chain`;
    /// none with `hold`) and takes what the socket holds while `readable`,
    /// without waiting: `Wait` once it must wait for the socket. A read
    /// shorter than the buffer took all there was, unless `drain` (the peer
    /// hung up: its end of file is to be read too).
    #[allow(clippy::too_many_arguments)]
    fn pump(
        &mut self,
        py: Python<'_>,
        codec: &Bound<'_, TcpClientCodec>,
        fd: RawFd,
        chain: bool,
        hold: bool,
        drain: bool,
        may_send: &mut bool,
        readable: &mut bool,
    ) -> PyResult<Pumped> {
        let mut buf = [0_u8; RECV_BYTES];
        loop {
            if !self.scratch.is_empty() && !hold {
                if !*may_send {
                    return Ok(Pumped::Due);
                }
                send_now(py, fd, &self.scratch)?;
                self.scratch.clear();
                self.rounds += 1;
                *may_send = chain;
            }
            if *readable {
                match recv_now(py, fd, &mut buf)? {
                    Received::Bytes(count) => {
                        let step = {
                            let mut codec = codec.borrow_mut();
                            codec.codec.receive_data(&buf[..count]);
                            self.batch
                                .receive(&mut codec.codec, &mut self.scratch)
                                .map_err(CoreError::from)?
                        };
                        if !matches!(step, Step::Wait | Step::Send) {
                            return Ok(Pumped::Ended(step));
                        }
                        *readable = drain || count == RECV_BYTES; // more may be there
                    }
                    Received::Nothing => *readable = false,
                    Received::End => return Ok(Pumped::Closed),
                }
            }
            if !*readable && (self.scratch.is_empty() || hold) {
                return Ok(Pumped::Wait);
            }
        }
    }

    /// `drive`'s round trips: sends the frames due, then takes what arrives
    /// and sends what the answers let out (only when `chain`), each wait for
    /// the socket a `poll` of at most `wait_s` with the GIL released, none past
    /// `within_s` after the call began; `missed` when a whole wait of `wait_s`
    /// ran out. Returns as `drive`.
    #[allow(clippy::too_many_arguments)]
    fn run_on<'py>(
        &mut self,
        py: Python<'py>,
        codec: &Bound<'py, TcpClientCodec>,
        fd: RawFd,
        wait_s: f64,
        within_s: f64,
        chain: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let began = Instant::now();
        let within = Duration::try_from_secs_f64(within_s).unwrap_or(Duration::ZERO);
        self.missed = false;
        let (mut may_send, mut readable) = match self.begin(codec, false) {
            Ok(state) => state,
            Err(step) => return self.outcome(py, step),
        };
        loop {
            let pumped = self.pump(
                py,
                codec,
                fd,
                chain,
                false,
                false,
                &mut may_send,
                &mut readable,
            );
            match pumped? {
                Pumped::Wait => {}
                Pumped::Due => return Ok(PyBool::new(py, true).to_owned().into_any()),
                Pumped::Ended(step) => return self.outcome(py, step),
                Pumped::Closed => return Ok(PyBytes::new(py, b"").into_any()),
            }
            let left = within.saturating_sub(began.elapsed());
            let block = Duration::try_from_secs_f64(wait_s).unwrap_or(Duration::ZERO);
            let wait = block.min(left);
            if wait.is_zero() {
                return Ok(py.None().into_bound(py));
            }
            let millis = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            if !poll_readable(py, fd, millis)? {
                self.missed = wait == block; // else the time ran out first
                return Ok(py.None().into_bound(py));
            }
            readable = true;
        }
    }

    /// One step that does not wait (`drive` with no wait, for `PlanGroup`);
    /// `drain`: the peer hung up (read to its end of file).
    pub(crate) fn step_now(
        &mut self,
        py: Python<'_>,
        codec: &Bound<'_, TcpClientCodec>,
        fd: RawFd,
        chain: bool,
        hold: bool,
        drain: bool,
    ) -> PyResult<Pumped> {
        match self.begin(codec, hold) {
            Ok((mut may_send, mut readable)) => self.pump(
                py,
                codec,
                fd,
                chain,
                hold,
                drain,
                &mut may_send,
                &mut readable,
            ),
            Err(step) => Ok(Pumped::Ended(step)),
        }
    }

    /// What Python gets for a step (see `receive`).
    pub(crate) fn outcome<'py>(&self, py: Python<'py>, step: Step) -> PyResult<Bound<'py, PyAny>> {
        Ok(match step {
            Step::Wait => py.None().into_bound(py),
            Step::Send => PyBytes::new(py, &self.scratch).into_any(),
            Step::Done => match (&self.plan, self.batch.responses()) {
                (Some(plan), _) => decode_blocks(py, plan.get(), &self.batch.blocks())?.into_any(),
                (None, [Some(response)]) => Response::from(response.clone())
                    .into_pyobject(py)?
                    .into_any(),
                (None, _) => py.None().into_bound(py), // not reached: one request, answered
            },
            Step::Failed(Failure::Exception { function, code }) => Response::Exception {
                function: Int::new(function),
                code: Int::new(code),
            }
            .into_pyobject(py)?
            .into_any(),
            Step::Failed(Failure::Rejected {
                transaction_id,
                unit,
                reason,
            }) => ResponseRejected::new(Some(transaction_id), unit, reason.to_string())
                .into_pyobject(py)?
                .into_any(),
        })
    }
}

#[pymethods]
impl PlanExchange {
    /// Raises `EncodeError` when a request of `plan` breaks a specification limit.
    #[new]
    fn new(unit: Int<u8>, plan: Bound<'_, ReadPlan>, window: Int<u16>) -> Result<Self, CoreError> {
        let requests = plan.get().requests_of();
        Self::of(*unit, requests, usize::from(*window), Some(plan.unbind()))
    }

    /// One `request` to `unit`: its outcome is the `Response` (a write's
    /// exchange). Raises `EncodeError` when it breaks a specification limit.
    #[staticmethod]
    fn request(unit: Int<u8>, request: &Bound<'_, Request>) -> Result<Self, CoreError> {
        Self::of(*unit, vec![request_of(request)], 1, None)
    }

    /// Drives the plan over the connected, non-blocking socket `fd` as far as
    /// it goes without the event loop, in brief blocks while `readable`'s rules
    /// allow them (`hubgate.modbus.readiness`, the Trio run's facts read here
    /// once): sends the frames due when it is called (the first ones on the
    /// first call, whose round trip times out `timeout_s` later), then takes
    /// what arrives and sends what the answers let out (only when `chain`;
    /// each later round trip times out `timeout_s` after its frames went out).
    /// `started`, `deadline` and `ended` are Trio's clock at the first call,
    /// for the round trip in flight and when the call returned.
    ///
    /// Returns what `receive` does once the plan ended (the fields' values, a
    /// `Response.Exception` or a `ResponseRejected`); `None` when it waits for
    /// an answer (wait the Trio way until the socket is readable or the
    /// `deadline`, then call again); `True` when frames are due and `chain` is
    /// false (call again to send them); `b""` when the device closed the
    /// connection. Raises `OSError` (the socket) and `FrameError` (a bad MBAP
    /// header: close the connection).
    fn drive<'py>(
        &mut self,
        py: Python<'py>,
        codec: &Bound<'py, TcpClientCodec>,
        fd: RawFd,
        readable: &Bound<'py, BriefWait>,
        timeout_s: f64,
        chain: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut wait = readable.borrow_mut();
        let run = wait.run(py).clone();
        let facts = run.get().read(py)?;
        let now = facts.now;
        if !self.begun {
            self.started = now;
            self.deadline = now + timeout_s;
        }
        let due = !self.begun || !self.scratch.is_empty();
        let within = wait.window_at(self.deadline, now, &facts);
        let began = Instant::now();
        let sent = self.rounds;
        let step = self.run_on(py, codec, fd, wait.block_s(), within.unwrap_or(0.0), chain);
        let took = began.elapsed().as_secs_f64();
        let ended = run.get().now_after(py, &facts)?;
        self.ended = ended;
        if self.rounds > sent && self.rounds > 1 {
            self.deadline = ended + timeout_s; // a later round trip: its own timeout
        }
        let step = step?;
        if step.is_none() {
            if self.missed {
                wait.miss();
            }
        } else if due && within.is_some() {
            wait.caught(took / f64::from((self.rounds - sent).max(1)));
        }
        Ok(step)
    }

    /// The first frames to send (`bytes`), or the fields' values for a plan
    /// without requests.
    fn start<'py>(
        &mut self,
        py: Python<'py>,
        codec: &Bound<'py, TcpClientCodec>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.scratch.clear();
        let step = self
            .batch
            .start(&mut codec.borrow_mut().codec, &mut self.scratch);
        self.outcome(py, step)
    }

    /// Feeds received bytes; returns `None` (wait for more), `bytes` (send
    /// them, then wait), the list of field values (done), a `Response.Exception`
    /// or a `ResponseRejected` (failed; nothing of the plan is pending any more).
    /// Raises `FrameError` on a bad MBAP header (close the connection).
    fn receive<'py>(
        &mut self,
        py: Python<'py>,
        codec: &Bound<'py, TcpClientCodec>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.scratch.clear();
        let step = {
            let mut codec = codec.borrow_mut();
            crate::modbus_codec::with_bytes(data, |d| codec.codec.receive_data(d))?;
            self.batch
                .receive(&mut codec.codec, &mut self.scratch)
                .map_err(CoreError::from)?
        };
        self.outcome(py, step)
    }

    /// Stops waiting for the unanswered requests (after a timeout or a lost link).
    fn abandon(&self, codec: &Bound<'_, TcpClientCodec>) {
        self.batch.abandon(&mut codec.borrow_mut().codec);
    }

    /// Frames received so far that answered none of the plan's requests.
    #[getter]
    pub(crate) fn strays(&self) -> u64 {
        self.batch.strays()
    }

    /// Requests in flight at most.
    #[getter]
    fn window(&self) -> usize {
        self.batch.window()
    }

    /// Requests answered so far.
    #[getter]
    pub(crate) fn answered(&self) -> usize {
        self.batch.answered()
    }

    /// Sends made so far (each of the frames the window let out).
    #[getter]
    fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Trio's clock when `drive` was first called.
    #[getter]
    fn started(&self) -> f64 {
        self.started
    }

    /// When the round trip in flight times out (Trio's clock; `drive`).
    #[getter]
    fn deadline(&self) -> f64 {
        self.deadline
    }

    /// Trio's clock when `drive` last returned (or as set: when the plan was
    /// given up).
    #[getter]
    fn ended(&self) -> f64 {
        self.ended
    }

    #[setter]
    fn set_ended(&mut self, ended: f64) {
        self.ended = ended;
    }
}
