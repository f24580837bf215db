//! Request statistics per Modbus device or OCPP charger: counts and latency
//! quantiles (`hubgate_core::modbus::latency`), recorded by every request
//! without a Python frame.

use hubgate_core::modbus::latency;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A `RequestStats`'s sketch: 1 %, latencies under 1 us counted as 1 us.
const ACCURACY: f64 = 0.01;
const FLOOR_S: f64 = 1e-6;

fn sketch() -> PyResult<latency::QuantileSketch> {
    latency::QuantileSketch::new(ACCURACY, FLOOR_S)
        .map_err(|error| PyValueError::new_err(error.to_string()))
}

/// Counters and latency quantiles of one device (or one connection).
#[pyclass(module = "hubgate._core")]
pub(crate) struct RequestStats {
    #[pyo3(get)]
    requests: u64,
    #[pyo3(get)]
    ok: u64,
    #[pyo3(get)]
    timeouts: u64,
    /// Answered with an error: a Modbus exception response, an OCPP CallError.
    #[pyo3(get)]
    exceptions: u64,
    #[pyo3(get)]
    errors: u64,
    #[pyo3(get)]
    latency_sum_s: f64,
    latency: latency::QuantileSketch,
}

#[pymethods]
impl RequestStats {
    #[new]
    fn new() -> PyResult<Self> {
        Ok(Self {
            requests: 0,
            ok: 0,
            timeouts: 0,
            exceptions: 0,
            errors: 0,
            latency_sum_s: 0.0,
            latency: sketch()?,
        })
    }

    /// `requests` requests answered normally, each after `latency_s`.
    #[pyo3(signature = (latency_s, requests = 1))]
    pub(crate) fn record_ok(&mut self, latency_s: f64, requests: u64) {
        self.requests += requests;
        self.ok += requests;
        self.latency.add(latency_s, requests);
        #[allow(clippy::cast_precision_loss)]
        let total = latency_s * requests as f64;
        self.latency_sum_s += total;
    }

    /// A request answered with an error (Modbus exception response, OCPP CallError).
    fn record_exception(&mut self, latency_s: f64) {
        self.requests += 1;
        self.exceptions += 1;
        self.latency.add(latency_s, 1);
        self.latency_sum_s += latency_s;
    }

    /// A request that got no answer before its deadline.
    fn record_timeout(&mut self) {
        self.requests += 1;
        self.timeouts += 1;
    }

    /// A request that failed otherwise (connection lost, bad frame).
    fn record_error(&mut self) {
        self.requests += 1;
        self.errors += 1;
    }

    /// The `fraction` quantile of the answers' latency (s); `None` without answers.
    fn percentile_s(&self, fraction: f64) -> Option<f64> {
        self.latency.quantile(fraction)
    }
}
