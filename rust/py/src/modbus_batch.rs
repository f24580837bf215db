//! A read plan over a `TcpClientCodec` in few calls: every frame encoded, every
//! response matched and every field decoded in Rust (`hubgate.modbus.tcp_master`);
//! over a socket, its round trips in one call while the answers come quickly
//! (`run_on`).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use hubgate_core::modbus::batch::{Batch, Failure, Step};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes};

use crate::errors::CoreError;
use crate::ints::Int;
use crate::modbus_codec::{ResponseRejected, TcpClientCodec};
use crate::modbus_pdu::Response;
use crate::modbus_values::{decode_blocks, ReadPlan};
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

/// The requests of one `ReadPlan` to one unit, at most `window` in flight.
#[pyclass(module = "hubgate._core")]
pub(crate) struct PlanExchange {
    batch: Batch,
    plan: Py<ReadPlan>,
    scratch: Vec<u8>,
    /// `run_on`: the batch was started (its first frames encoded).
    started: bool,
    /// `run_on`: frames sent so far.
    pub(crate) rounds: u32,
    /// `run_on` returned `None` after a wait that ended without an answer.
    missed: bool,
}

impl PlanExchange {
    /// Starts the batch on the first call (its first frames encoded): `Err`
    /// with the step when it ended at once (a plan without requests); else
    /// whether frames may be sent and whether the socket is to be read
    /// before a wait (`pump`'s state: frames due go first, then the wait).
    fn begin(
        &mut self,
        codec: &Bound<'_, TcpClientCodec>,
        hold: bool,
    ) -> Result<(bool, bool), Step> {
        if !self.started {
            self.started = true;
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
    /// without waiting: `Wait` once it must wait for the socket.
    #[allow(clippy::too_many_arguments)]
    fn pump(
        &mut self,
        py: Python<'_>,
        codec: &Bound<'_, TcpClientCodec>,
        fd: RawFd,
        chain: bool,
        hold: bool,
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
                        *readable = count == RECV_BYTES; // more may be there
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

    /// One step that does not wait (`run_on` with no wait, for `PlanGroup`).
    pub(crate) fn step_now(
        &mut self,
        py: Python<'_>,
        codec: &Bound<'_, TcpClientCodec>,
        fd: RawFd,
        chain: bool,
        hold: bool,
    ) -> PyResult<Pumped> {
        match self.begin(codec, hold) {
            Ok((mut may_send, mut readable)) => {
                self.pump(py, codec, fd, chain, hold, &mut may_send, &mut readable)
            }
            Err(step) => Ok(Pumped::Ended(step)),
        }
    }

    /// What Python gets for a step (see `receive`).
    pub(crate) fn outcome<'py>(&self, py: Python<'py>, step: Step) -> PyResult<Bound<'py, PyAny>> {
        Ok(match step {
            Step::Wait => py.None().into_bound(py),
            Step::Send => PyBytes::new(py, &self.scratch).into_any(),
            Step::Done => decode_blocks(py, self.plan.get(), &self.batch.blocks())?.into_any(),
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
        Ok(Self {
            batch: Batch::new(*unit, requests, usize::from(*window))?,
            plan: plan.unbind(),
            scratch: Vec::new(),
            started: false,
            rounds: 0,
            missed: false,
        })
    }

    /// Drives the plan over the connected, non-blocking socket `fd` as far as
    /// it goes without the event loop: sends the frames due when it is called
    /// (the first ones on the first call), then takes what arrives and sends
    /// what the answers let out, each wait for the socket a `poll` of at most
    /// `wait_s` with the GIL released, none past `within_s` after the call
    /// began. Frames that fall due during the call go out only when `chain`
    /// is true; with `hold`, none go out (the device's pause): only what the
    /// socket holds is taken.
    ///
    /// Returns what `receive` does once the plan ended (the fields' values, a
    /// `Response.Exception` or a `ResponseRejected`); `None` when it waits for
    /// an answer (`missed`: a whole wait of `wait_s` ran out, else `within_s`
    /// did: wait until the socket is readable, then call again); `True` when
    /// frames are due and `chain` is false (call again to send them); `b""` when the device closed
    /// the connection. Raises `OSError` (the socket) and `FrameError` (a bad
    /// MBAP header: close the connection).
    #[pyo3(signature = (codec, fd, wait_s, within_s, chain, hold = false))]
    #[allow(clippy::too_many_arguments)]
    fn run_on<'py>(
        &mut self,
        py: Python<'py>,
        codec: &Bound<'py, TcpClientCodec>,
        fd: RawFd,
        wait_s: f64,
        within_s: f64,
        chain: bool,
        hold: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let began = Instant::now();
        let within = Duration::try_from_secs_f64(within_s).unwrap_or(Duration::ZERO);
        self.missed = false;
        let (mut may_send, mut readable) = match self.begin(codec, hold) {
            Ok(state) => state,
            Err(step) => return self.outcome(py, step),
        };
        loop {
            match self.pump(py, codec, fd, chain, hold, &mut may_send, &mut readable)? {
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
    fn strays(&self) -> u64 {
        self.batch.strays()
    }

    /// Requests in flight at most.
    #[getter]
    fn window(&self) -> usize {
        self.batch.window()
    }

    /// Requests answered so far.
    #[getter]
    fn answered(&self) -> usize {
        self.batch.answered()
    }

    /// Sends `run_on` made so far (each of the frames the window let out).
    #[getter]
    fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The last `run_on` returned `None` after a whole wait of `wait_s` without
    /// an answer (not because `within_s` ran out first).
    #[getter]
    fn missed(&self) -> bool {
        self.missed
    }
}
