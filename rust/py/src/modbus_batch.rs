//! A read plan over a `TcpClientCodec` in few calls: every frame encoded, every
//! response matched and every field decoded in Rust (`hubgate.modbus.tcp_master`).

use hubgate_core::modbus::batch::{Batch, Failure, Step};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::CoreError;
use crate::ints::Int;
use crate::modbus_codec::{ResponseRejected, TcpClientCodec};
use crate::modbus_pdu::Response;
use crate::modbus_values::{decode_blocks, ReadPlan};

/// The requests of one `ReadPlan` to one unit, at most `window` in flight.
#[pyclass(module = "hubgate._core")]
pub(crate) struct PlanExchange {
    batch: Batch,
    plan: Py<ReadPlan>,
    scratch: Vec<u8>,
}

impl PlanExchange {
    /// What Python gets for a step (see `receive`).
    fn outcome<'py>(&self, py: Python<'py>, step: Step) -> PyResult<Bound<'py, PyAny>> {
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
        })
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
}
