//! Request statistics per Modbus device or OCPP charger: counts and latency
//! quantiles (`hubgate_core::modbus::latency`), recorded by every request
//! without a Python frame.

use hubgate_core::modbus::latency;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A `RequestStats`'s sketch (and `QuantileSketch`'s defaults): 1 %,
/// latencies under 1 us counted as 1 us.
const ACCURACY: f64 = 0.01;
const FLOOR_S: f64 = 1e-6;

fn sketch(relative_accuracy: f64, floor: f64) -> PyResult<latency::QuantileSketch> {
    latency::QuantileSketch::new(relative_accuracy, floor)
        .map_err(|error| PyValueError::new_err(error.to_string()))
}

/// Quantiles of every value added, each within `relative_accuracy` of the true one.
#[pyclass(module = "hubgate._core")]
pub(crate) struct QuantileSketch(latency::QuantileSketch);

#[pymethods]
impl QuantileSketch {
    #[new]
    #[pyo3(signature = (relative_accuracy = 0.01, floor = 1e-6))]
    fn new(relative_accuracy: f64, floor: f64) -> PyResult<Self> {
        Ok(Self(sketch(relative_accuracy, floor)?))
    }

    /// Counts `value` `times` times (negative and NaN values count as the floor,
    /// infinity as the largest finite value).
    #[pyo3(signature = (value, times = 1))]
    fn add(&mut self, value: f64, times: u64) {
        self.0.add(value, times);
    }

    /// The `q` quantile (0 to 1) of the values added; `None` before the first.
    fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q)
    }

    #[getter]
    fn count(&self) -> u64 {
        self.0.count()
    }

    #[getter]
    fn max(&self) -> f64 {
        self.0.max()
    }

    #[getter]
    fn buckets(&self) -> usize {
        self.0.buckets()
    }

    #[getter]
    fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }

    #[getter]
    fn relative_accuracy(&self) -> f64 {
        self.0.relative_accuracy()
    }

    #[getter]
    fn floor(&self) -> f64 {
        self.0.floor()
    }
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
            latency: sketch(ACCURACY, FLOOR_S)?,
        })
    }

    /// `requests` requests answered normally, each after `latency_s`.
    #[pyo3(signature = (latency_s, requests = 1))]
    fn record_ok(&mut self, latency_s: f64, requests: u64) {
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
