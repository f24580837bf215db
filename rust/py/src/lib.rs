//! PyO3 bindings: the `hubgate._core` extension module.
//!
//! Thin wrappers over `hubgate-core`; every Rust error becomes a Python
//! exception in [`errors`], and nowhere else.

mod alloc;
mod alloc_buffers;
mod crc;
mod errors;
mod ints;
mod modbus_batch;
mod modbus_codec;
mod modbus_group;
mod modbus_pdu;
mod modbus_stats;
mod modbus_values;
mod ocpp;
mod paths;
mod plan;
mod readiness;
mod socket_io;
mod websocket;

use pyo3::prelude::*;

/// The `hubgate._core` module.
#[pymodule(gil_used = false)]
mod _core {
    #[pymodule_export]
    use super::crc::{check_crc, crc16};
    #[pymodule_export]
    use super::modbus_batch::PlanExchange;
    #[pymodule_export]
    use super::modbus_codec::{
        RequestReceived, RequestRejected, ResponseReceived, ResponseRejected, RtuClientCodec,
        RtuServerCodec, TcpClientCodec, TcpServerCodec,
    };
    #[pymodule_export]
    use super::modbus_group::{PlanGroup, Turn};
    #[pymodule_export]
    use super::modbus_pdu::{Request, Response};
    #[pymodule_export]
    use super::modbus_stats::RequestStats;
    #[pymodule_export]
    use super::modbus_values::{Field, ReadPlan};
    #[pymodule_export]
    use super::readiness::{mark_pass, BriefWait, TrioRun};

    #[pymodule_export]
    use super::alloc::{
        AllocConnector, AllocNode, AllocReason, AllocSettings, Allocation, Allocator,
    };
    #[pymodule_export]
    use super::ocpp::OcppCallReader;
    #[pymodule_export]
    use super::paths::ConnectorPaths;
    #[pymodule_export]
    use super::plan::{DeadlinePlan, DeadlinePlanner};
    #[pymodule_export]
    use super::websocket::{encode_websocket_close, encode_websocket_frame, WebSocketDecoder};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        super::errors::register(m)
    }
}
