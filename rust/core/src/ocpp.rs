//! OCPP-J hot calls in one pass: a frame's text in, what its handler needs out.
//!
//! A charger sends mostly three calls: MeterValues, StatusNotification and Heartbeat.
//! [`CallReader::read`] parses such a frame into its [`Tape`] (nothing allocated per
//! field), checks its payload against the version's schema in place (the `jsonschema`
//! crate, the engine `jsonschema_rs` wraps, with formats checked) and takes out the
//! fields the handler uses, the meter samples already reduced to the values a connector
//! keeps. Anything else, a frame with a problem of any kind included, is `None`: the
//! caller takes its general path, which names the CallError. So this reader never
//! rejects; it only recognises the plain case (a kept sample whose value is not a finite
//! number once scaled is not: the general path skips it and logs it).

use jsonschema::Validator;
use serde_json::Value;

use crate::json_tape::{Tape, TapeJson, TapeNode};

/// The calls read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `Heartbeat` (every version).
    Heartbeat,
    /// `StatusNotification` (1.6 and 2.x differ).
    StatusNotification,
    /// `MeterValues` (1.6 and 2.x differ).
    MeterValues,
}

impl Action {
    /// The action's name in a frame.
    pub fn name(self) -> &'static str {
        match self {
            Action::Heartbeat => "Heartbeat",
            Action::StatusNotification => "StatusNotification",
            Action::MeterValues => "MeterValues",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "Heartbeat" => Some(Action::Heartbeat),
            "StatusNotification" => Some(Action::StatusNotification),
            "MeterValues" => Some(Action::MeterValues),
            _ => None,
        }
    }
}

/// One `meterValue` entry reduced to what a connector keeps (None: not reported in it).
#[derive(Debug, Clone, PartialEq)]
pub struct MeterValue<'t> {
    /// Its `timestamp`, as sent.
    pub timestamp: &'t str,
    /// `Current.Import` per phase (A); a sample without a known phase counts as L1.
    pub current_a: [Option<f64>; 3],
    /// `Voltage` per phase (V); samples without a known phase are skipped.
    pub voltage_v: [Option<f64>; 3],
    /// `Power.Active.Import` (W): the last total, else the sum of the phases.
    pub power_w: Option<f64>,
    /// `Energy.Active.Import.Register` (Wh): the last sample without a `phase` key.
    pub energy_wh: Option<f64>,
    /// `SoC` (%).
    pub soc_percent: Option<f64>,
    /// `Current.Offered` (A).
    pub offered_current_a: Option<f64>,
}

/// What a hot call carries for its handler; its text is the reader's, until its next read.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields<'t> {
    /// A Heartbeat (its payload is empty).
    Heartbeat,
    /// A StatusNotification: 1.6 `connectorId`, `status`, `errorCode`, `timestamp`;
    /// 2.x `evseId`, `connectorStatus`, `timestamp` (`error_code` None).
    Status {
        /// 1.6 `connectorId`, 2.x `evseId`.
        connector: i64,
        /// 1.6 `status`, 2.x `connectorStatus`.
        status: &'t str,
        /// 1.6 `errorCode`.
        error_code: Option<&'t str>,
        /// `timestamp` (optional in 1.6).
        timestamp: Option<&'t str>,
    },
    /// A MeterValues: 1.6 `connectorId`, 2.x `evseId`, and each `meterValue`.
    Meter {
        /// 1.6 `connectorId`, 2.x `evseId`.
        connector: i64,
        /// The entries, in the frame's order.
        values: Vec<MeterValue<'t>>,
    },
}

/// A hot call read from a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct HotCall<'t> {
    /// The message id.
    pub unique_id: &'t str,
    /// Which call.
    pub action: Action,
    /// What its handler needs.
    pub fields: Fields<'t>,
}

/// OCPP-J: a message id is a string of at most 36 characters.
const MAX_UNIQUE_ID_CHARS: usize = 36;

/// Reads the hot calls of one OCPP version.
pub struct CallReader {
    v16: bool,
    validators: Vec<(Action, Validator<TapeJson>)>,
    tape: Tape,
}

/// A schema that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl CallReader {
    /// A reader of nothing yet; `v16`: OCPP 1.6 payloads, else 2.x.
    pub fn new(v16: bool) -> Self {
        Self {
            v16,
            validators: Vec::new(),
            tape: Tape::default(),
        }
    }

    /// Reads `action` from now on, checked against `schema` (a JSON Schema's text, as the
    /// `ocpp` package ships it; its `$id` is dropped). False for an action not read here.
    pub fn add(&mut self, action: &str, schema: &str) -> Result<bool, SchemaError> {
        let Some(action) = Action::from_name(action) else {
            return Ok(false);
        };
        let mut schema: Value = serde_json::from_str(schema.trim_start_matches('\u{feff}'))
            .map_err(|e| SchemaError(e.to_string()))?;
        if let Value::Object(map) = &mut schema {
            map.remove("$id");
        }
        let validator = jsonschema::options_for::<TapeJson>()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| SchemaError(e.to_string()))?;
        self.validators.retain(|(known, _)| *known != action);
        self.validators.push((action, validator));
        Ok(true)
    }

    /// The hot call in `text`, or None when it is anything else or anything is off.
    pub fn read(&mut self, text: &str) -> Option<HotCall<'_>> {
        self.tape.parse(text).ok()?;
        let frame = self.tape.root();
        let mut parts = frame.items()?;
        let (kind, unique_id, action, payload) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || kind.u64() != Some(2) {
            return None;
        }
        let action = Action::from_name(action.str()?)?;
        let validator = &self.validators.iter().find(|(a, _)| *a == action)?.1;
        let unique_id = unique_id.str()?;
        if unique_id.is_empty() || unique_id.chars().count() > MAX_UNIQUE_ID_CHARS {
            return None;
        }
        // A whole float of 2^63 or more counts as an integer to the schema engine, not to
        // jsonschema-rs reading the Python float orjson makes of it: left to that path.
        if !payload.is_object() || self.tape.has_big_integral_float() {
            return None;
        }
        if !validator.is_valid(payload) {
            return None;
        }
        let fields = match action {
            Action::Heartbeat => Fields::Heartbeat,
            Action::StatusNotification => status(self.v16, payload)?,
            Action::MeterValues => meter(self.v16, payload)?,
        };
        Some(HotCall {
            unique_id,
            action,
            fields,
        })
    }
}

fn status(v16: bool, p: TapeNode<'_>) -> Option<Fields<'_>> {
    let (connector, status) = match v16 {
        true => ("connectorId", "status"),
        false => ("evseId", "connectorStatus"),
    };
    Some(Fields::Status {
        connector: p.get(connector)?.i64()?,
        status: p.get(status)?.str()?,
        error_code: match v16 {
            true => Some(p.get("errorCode")?.str()?),
            false => None,
        },
        timestamp: match p.get("timestamp") {
            None => None,
            Some(value) => Some(value.str()?),
        },
    })
}

fn meter(v16: bool, p: TapeNode<'_>) -> Option<Fields<'_>> {
    let connector = p.get(if v16 { "connectorId" } else { "evseId" })?.i64()?;
    let values = p
        .get("meterValue")?
        .items()?
        .map(|entry| meter_value(v16, entry))
        .collect::<Option<Vec<_>>>()?;
    Some(Fields::Meter { connector, values })
}

fn meter_value(v16: bool, entry: TapeNode<'_>) -> Option<MeterValue<'_>> {
    let mut out = MeterValue {
        timestamp: entry.get("timestamp")?.str()?,
        current_a: [None; 3],
        voltage_v: [None; 3],
        power_w: None,
        energy_wh: None,
        soc_percent: None,
        offered_current_a: None,
    };
    let mut total_power = false;
    let mut phase_power: Option<f64> = None;
    for sample in entry.get("sampledValue")?.items()? {
        if !sample.is_object() {
            return None;
        }
        let measurand = match sample.get("measurand") {
            None => "Energy.Active.Import.Register",
            Some(value) => value.str()?,
        };
        let kept = matches!(
            measurand,
            "Current.Import"
                | "Voltage"
                | "Power.Active.Import"
                | "Energy.Active.Import.Register"
                | "SoC"
                | "Current.Offered"
        );
        if !kept {
            continue;
        }
        let Some(value) = (match v16 {
            true => value_16(sample)?,
            false => Some(value_2(sample)?),
        }) else {
            continue;
        };
        if !value.is_finite() {
            return None; // (the Python path skips the sample and says so)
        }
        let phase = match sample.get("phase") {
            None => None,
            Some(phase) => phase_index(phase.str()?),
        };
        match measurand {
            "Current.Import" => out.current_a[phase.unwrap_or(0)] = Some(value),
            "Voltage" => {
                if let Some(phase) = phase {
                    out.voltage_v[phase] = Some(value);
                }
            }
            "Power.Active.Import" => match phase {
                None => (out.power_w, total_power) = (Some(value), true),
                Some(_) => phase_power = Some(phase_power.unwrap_or(0.0) + value),
            },
            "Energy.Active.Import.Register" => {
                if sample.get("phase").is_none() {
                    out.energy_wh = Some(value);
                }
            }
            "SoC" => out.soc_percent = Some(value),
            _ => out.offered_current_a = Some(value),
        }
    }
    if !total_power {
        if let Some(sum) = phase_power {
            if !sum.is_finite() {
                return None; // (finite phases whose sum is not: as above)
            }
            out.power_w = Some(sum);
        }
    }
    Some(out)
}

fn phase_index(phase: &str) -> Option<usize> {
    match phase {
        "L1" | "L1-N" => Some(0),
        "L2" | "L2-N" => Some(1),
        "L3" | "L3-N" => Some(2),
        _ => None,
    }
}

fn scale(unit: &str) -> f64 {
    match unit {
        "kW" | "kWh" | "kVA" | "kvar" | "kvarh" => 1000.0,
        _ => 1.0,
    }
}

/// A 1.6 sample in base units: `Some(None)` for signed data (skipped), `None` (read
/// elsewhere) for a value that is not a plain decimal number.
fn value_16(sample: TapeNode<'_>) -> Option<Option<f64>> {
    if sample.get("format").and_then(|f| f.str()) == Some("SignedData") {
        return Some(None);
    }
    let number = plain_decimal(sample.get("value")?.str()?)?;
    Some(Some(match sample.get("unit") {
        None => number,
        Some(unit) => number * scale(unit.str()?),
    }))
}

/// A 2.x sample in base units (`unitOfMeasure`'s unit and power-of-ten multiplier).
fn value_2(sample: TapeNode<'_>) -> Option<f64> {
    let number = sample.get("value")?.f64()?;
    let Some(unit) = sample.get("unitOfMeasure") else {
        return Some(number);
    };
    if !unit.is_object() {
        return None;
    }
    let name = match unit.get("unit") {
        None => "Wh",
        Some(name) => name.str()?,
    };
    let multiplier = match unit.get("multiplier") {
        None => 0,
        Some(m) => m.i64()?,
    };
    Some(number * (scale(name) * 10f64.powf(multiplier as f64)))
}

/// `text` as a number when it is written `[+-]digits[.digits][e[+-]digits]` (at least one
/// digit before or after the point), the form every reader parses alike; else None.
fn plain_decimal(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT: &str = r#"{"$schema": "http://json-schema.org/draft-04/schema#",
        "$id": "urn:x", "type": "object", "properties": {}, "additionalProperties": false}"#;

    fn reader() -> CallReader {
        let mut reader = CallReader::new(true);
        assert_eq!(reader.add("Heartbeat", HEARTBEAT), Ok(true));
        assert_eq!(reader.add("Authorize", HEARTBEAT), Ok(false));
        reader
    }

    #[test]
    fn reads_a_heartbeat() {
        let mut reader = reader();
        let call = reader.read(r#"[2, "19", "Heartbeat", {}]"#).unwrap();
        assert_eq!(call.unique_id, "19");
        assert_eq!(call.fields, Fields::Heartbeat);
    }

    #[test]
    fn leaves_everything_else() {
        let mut reader = reader();
        for text in [
            r#"[2, "19", "Heartbeat", {"x": 1}]"#,
            r#"[2, "19", "Heartbeat", []]"#,
            r#"[2, "", "Heartbeat", {}]"#,
            r#"[2, 19, "Heartbeat", {}]"#,
            r#"[2.0, "19", "Heartbeat", {}]"#,
            r#"[3, "19", {}]"#,
            r#"[2, "19", "Authorize", {}]"#,
            r#"[2, "1234567890123456789012345678901234567", "Heartbeat", {}]"#,
            r#"[2, "19", "Heartbeat", {}"#,
        ] {
            assert_eq!(reader.read(text), None, "{text}");
        }
    }

    const ANY: &str = r#"{"type": "object"}"#;

    fn meter_frame(connector: &str, samples: &str) -> String {
        format!(
            r#"[2, "7", "MeterValues", {{{connector}, "meterValue": [{{"timestamp": "t", "sampledValue": [{samples}]}}]}}]"#
        )
    }

    #[test]
    fn leaves_a_value_that_is_not_finite_to_the_general_path() {
        let mut v16 = CallReader::new(true);
        assert_eq!(v16.add("MeterValues", ANY), Ok(true));
        let mut v2 = CallReader::new(false);
        assert_eq!(v2.add("MeterValues", ANY), Ok(true));
        let (c16, c2) = (r#""connectorId": 1"#, r#""evseId": 1"#);
        let current = r#""measurand": "Current.Import""#;
        let power = r#""measurand": "Power.Active.Import""#;
        for value in ["1e400", "-1e309"] {
            let samples = format!(r#"{{"value": "{value}", {current}}}"#);
            assert_eq!(v16.read(&meter_frame(c16, &samples)), None, "{value}");
        }
        // (values under 2^63 or not whole: a bigger whole number goes the Python way anyway)
        let scaled = |value: &str, unit: &str| {
            format!(r#"{{"value": {value}, {current}, "unitOfMeasure": {{{unit}}}}}"#)
        };
        for samples in [
            scaled("1", r#""multiplier": 309"#),
            scaled("0", r#""multiplier": 400"#),
            scaled("9.5", r#""multiplier": 308"#),
            scaled("2.5", r#""unit": "kWh", "multiplier": 306"#),
            format!(
                r#"{{"value": 9.5, {power}, "phase": "L1", "unitOfMeasure": {{"multiplier": 307}}}},
                {{"value": 9.5, {power}, "phase": "L2", "unitOfMeasure": {{"multiplier": 307}}}}"#
            ),
        ] {
            assert_eq!(v2.read(&meter_frame(c2, &samples)), None, "{samples}");
        }
        let samples = scaled("9.5", r#""multiplier": 307"#);
        let Some(HotCall {
            fields: Fields::Meter { values, .. },
            ..
        }) = v2.read(&meter_frame(c2, &samples))
        else {
            panic!("a finite value is read");
        };
        assert_eq!(values[0].current_a[0], Some(9.5 * 1e307));
    }

    #[test]
    fn plain_decimals_only() {
        for (text, want) in [
            ("12", Some(12.0)),
            ("-1.5", Some(-1.5)),
            ("+.5", Some(0.5)),
            ("5.", Some(5.0)),
            ("1e3", Some(1000.0)),
            ("2.5E-1", Some(0.25)),
        ] {
            assert_eq!(plain_decimal(text), want, "{text}");
        }
        for text in [
            "", ".", "1_0", " 1", "1 ", "inf", "nan", "1e", "0x10", "e5", "--1",
        ] {
            assert_eq!(plain_decimal(text), None, "{text}");
        }
    }
}
