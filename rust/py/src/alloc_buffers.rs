//! Plain inputs and outputs of the allocator: any float64 / uint8 buffer
//! (`array.array`, `memoryview`, numpy) or a sequence, copied into reusable
//! vectors; results handed back as `array.array`.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyType};

/// Copies a float64 buffer or a sequence of numbers into `out`.
pub(crate) fn read_f64(obj: &Bound<'_, PyAny>, out: &mut Vec<f64>) -> PyResult<()> {
    read_column(obj, out)
}

/// Copies a buffer of `T` (float64, uint8, int8: `array('d')`, `array('B')`, `array('b')`)
/// or a sequence of numbers that fit `T` into `out`.
pub(crate) fn read_column<T>(obj: &Bound<'_, PyAny>, out: &mut Vec<T>) -> PyResult<()>
where
    T: Element + Copy + Default + for<'a, 'py> FromPyObject<'a, 'py, Error = PyErr>,
{
    if let Ok(buffer) = PyBuffer::<T>::get(obj) {
        out.resize(buffer.item_count(), T::default());
        return buffer.copy_to_slice(obj.py(), out);
    }
    out.clear();
    for item in obj.try_iter()? {
        out.push(item?.extract::<T>()?);
    }
    Ok(())
}

/// Copies a uint8 buffer (bytes, bytearray, `array('B')`) or a sequence of
/// truth values into `out` as 0 or 1.
pub(crate) fn read_flags(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(buffer) = PyBuffer::<u8>::get(obj) {
        out.resize(buffer.item_count(), 0);
        return buffer.copy_to_slice(obj.py(), out);
    }
    out.clear();
    for item in obj.try_iter()? {
        out.push(u8::from(item?.is_truthy()?));
    }
    Ok(())
}

static ARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A new `array.array` of `typecode` holding `bytes` (native byte order).
pub(crate) fn to_array<'py>(
    py: Python<'py>,
    typecode: &str,
    bytes: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    ARRAY
        .import(py, "array", "array")?
        .call1((typecode, PyBytes::new(py, bytes)))
}

/// Native-order bytes of each value.
pub(crate) fn bytes_of<T: Copy, const N: usize>(
    values: &[T],
    to_bytes: fn(T) -> [u8; N],
) -> Vec<u8> {
    values.iter().flat_map(|&v| to_bytes(v)).collect()
}
