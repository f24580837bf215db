//! Integers handed in from Python. PyO3 raises `OverflowError` for an integer
//! that does not fit its Rust type; these wrappers raise the extension's own
//! error instead, naming the value and the range: `CodecError` for Modbus
//! fields ([`Int`], [`Ints`]), `TopologyError` for the allocator's tree
//! ([`TreeInt`]). Any other failure (a `str` for an int) stays a `TypeError`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

use crate::errors::{CoreError, Domain};

/// A Rust integer type and its range, for the message.
pub(crate) trait Ranged: Copy {
    const NAME: &'static str;
    const MIN: i128;
    const MAX: i128;
}

macro_rules! ranged {
    ($($t:ty),*) => {$(
        impl Ranged for $t {
            const NAME: &'static str = stringify!($t);
            #[allow(clippy::cast_lossless, clippy::cast_possible_wrap)]
            const MIN: i128 = <$t>::MIN as i128;
            #[allow(clippy::cast_lossless, clippy::cast_possible_wrap)]
            const MAX: i128 = <$t>::MAX as i128;
        }
    )*};
}

ranged!(u8, u16, u32, u64, usize, i64);

/// Which Python error an out-of-range integer of a wrapper becomes.
pub(crate) trait InDomain {
    const DOMAIN: Domain;
}

/// Modbus fields: `CodecError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Codec;

impl InDomain for Codec {
    const DOMAIN: Domain = Domain::Codec;
}

/// The allocator's tree: `TopologyError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tree;

impl InDomain for Tree {
    const DOMAIN: Domain = Domain::Topology;
}

fn out_of_range<T: Ranged, D: InDomain>(what: &str, error: PyErr, py: Python<'_>) -> PyErr {
    if error.is_instance_of::<PyOverflowError>(py) {
        let message = format!(
            "{what} is out of range for {} ({} to {})",
            T::NAME,
            T::MIN,
            T::MAX
        );
        CoreError::OutOfRange(D::DOMAIN, message).into()
    } else {
        error
    }
}

/// One integer of type `T`; out of range raises the error of domain `D`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Int<T, D = Codec>(pub(crate) T, PhantomData<D>);

/// An integer of the allocator's tree.
pub(crate) type TreeInt<T> = Int<T, Tree>;

impl<T, D> Int<T, D> {
    pub(crate) fn new(value: T) -> Self {
        Self(value, PhantomData)
    }
}

impl<T: fmt::Debug, D> fmt::Debug for Int<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T, D> Deref for Int<T, D> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'a, 'py, T, D> FromPyObject<'a, 'py> for Int<T, D>
where
    T: Ranged + FromPyObject<'a, 'py>,
    T::Error: Into<PyErr>,
    D: InDomain,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<T>() {
            Ok(value) => Ok(Self::new(value)),
            Err(error) => {
                let what = obj
                    .repr()
                    .map_or_else(|_| "the value".into(), |r| r.to_string());
                Err(out_of_range::<T, D>(&what, error.into(), obj.py()))
            }
        }
    }
}

impl<'py, T: IntoPyObject<'py> + Copy, D> IntoPyObject<'py> for Int<T, D> {
    type Target = T::Target;
    type Output = T::Output;
    type Error = T::Error;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        self.0.into_pyobject(py)
    }
}

impl<'py, T: IntoPyObject<'py> + Copy, D> IntoPyObject<'py> for &Int<T, D> {
    type Target = T::Target;
    type Output = T::Output;
    type Error = T::Error;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        self.0.into_pyobject(py)
    }
}

/// A list of Modbus integers of type `T` (registers); one out of range raises `CodecError`.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Ints<T>(pub(crate) Vec<T>);

impl<T: fmt::Debug> fmt::Debug for Ints<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T> Deref for Ints<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'a, 'py, T> FromPyObject<'a, 'py> for Ints<T>
where
    T: Ranged + for<'b> FromPyObject<'b, 'py>,
    for<'b> <T as FromPyObject<'b, 'py>>::Error: Into<PyErr>,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.extract::<Vec<T>>() {
            Ok(values) => Ok(Self(values)),
            Err(error) => Err(out_of_range::<T, Codec>("a value", error, obj.py())),
        }
    }
}

impl<'py, T: IntoPyObject<'py> + Clone> IntoPyObject<'py> for Ints<T> {
    type Target = <Vec<T> as IntoPyObject<'py>>::Target;
    type Output = <Vec<T> as IntoPyObject<'py>>::Output;
    type Error = <Vec<T> as IntoPyObject<'py>>::Error;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        self.0.into_pyobject(py)
    }
}

impl<'py, T: IntoPyObject<'py> + Clone> IntoPyObject<'py> for &Ints<T> {
    type Target = <Vec<T> as IntoPyObject<'py>>::Target;
    type Output = <Vec<T> as IntoPyObject<'py>>::Output;
    type Error = <Vec<T> as IntoPyObject<'py>>::Error;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        self.0.clone().into_pyobject(py)
    }
}
