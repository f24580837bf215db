//! Reading a hot call allocates nothing per field: once the reader's tape has grown, a
//! MeterValues costs one allocation (its entries' list), whatever its samples.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hubgate_core::ocpp::{CallReader, Fields};

/// Counts every allocation of this test binary (it has one test, so one thread allocating).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: Counting = Counting;

/// The `ocpp` package's OCPP 1.6 MeterValues request schema (ocpp/v16/schemas/MeterValues.json).
const METER_VALUES_16: &str = r#"{"$schema": "http://json-schema.org/draft-04/schema#", "title": "MeterValuesRequest", "type": "object", "properties": {"connectorId": {"type": "integer"}, "transactionId": {"type": "integer"}, "meterValue": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {"timestamp": {"type": "string", "format": "date-time"}, "sampledValue": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {"value": {"type": "string"}, "context": {"type": "string", "additionalProperties": false, "enum": ["Interruption.Begin", "Interruption.End", "Sample.Clock", "Sample.Periodic", "Transaction.Begin", "Transaction.End", "Trigger", "Other"]}, "format": {"type": "string", "additionalProperties": false, "enum": ["Raw", "SignedData"]}, "measurand": {"type": "string", "additionalProperties": false, "enum": ["Energy.Active.Export.Register", "Energy.Active.Import.Register", "Energy.Reactive.Export.Register", "Energy.Reactive.Import.Register", "Energy.Active.Export.Interval", "Energy.Active.Import.Interval", "Energy.Reactive.Export.Interval", "Energy.Reactive.Import.Interval", "Power.Active.Export", "Power.Active.Import", "Power.Offered", "Power.Reactive.Export", "Power.Reactive.Import", "Power.Factor", "Current.Import", "Current.Export", "Current.Offered", "Voltage", "Frequency", "Temperature", "SoC", "RPM"]}, "phase": {"type": "string", "additionalProperties": false, "enum": ["L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1"]}, "location": {"type": "string", "additionalProperties": false, "enum": ["Cable", "EV", "Inlet", "Outlet", "Body"]}, "unit": {"type": "string", "additionalProperties": false, "enum": ["Wh", "kWh", "varh", "kvarh", "W", "kW", "VA", "kVA", "var", "kvar", "A", "V", "K", "Celcius", "Celsius", "Fahrenheit", "Percent", "Hertz"]}}, "additionalProperties": false, "required": ["value"]}}}, "additionalProperties": false, "required": ["timestamp", "sampledValue"]}}}, "additionalProperties": false, "required": ["connectorId", "meterValue"]}"#;

fn frame(samples: usize) -> String {
    let sample = r#"{"value": "16.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"}"#;
    let samples = vec![sample; samples].join(", ");
    format!(
        r#"[2, "4711", "MeterValues", {{"connectorId": 1, "transactionId": 7, "meterValue": [{{"timestamp": "2026-12-07T21:00:00.123Z", "sampledValue": [{samples}, {{"value": "12.5", "unit": "kWh"}}]}}]}}]"#
    )
}

#[test]
fn a_meter_values_allocates_its_list_only() {
    let mut reader = CallReader::new(true);
    assert_eq!(reader.add("MeterValues", METER_VALUES_16), Ok(true));
    for samples in [1, 8, 20] {
        let text = frame(samples);
        let read = |reader: &mut CallReader| match reader.read(&text).map(|call| call.fields) {
            Some(Fields::Meter { values, .. }) => values[0].energy_wh,
            other => panic!("{other:?}"),
        };
        assert_eq!(read(&mut reader), Some(12_500.0)); // the tape grows to this frame
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        assert_eq!(read(&mut reader), Some(12_500.0));
        let made = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(made, 1, "{samples} samples");
    }
}
