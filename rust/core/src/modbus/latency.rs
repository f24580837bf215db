//! A streaming quantile sketch for request latencies: constant memory, a
//! bounded relative error (`RequestStats` per Modbus device or OCPP charger).
//!
//! The DDSketch idea (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable
//! quantile sketch with relative-error guarantees", VLDB 2019): a value x > 0
//! counts in bucket ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a); every
//! value in a bucket is within a relative error `a` of the bucket's
//! representative 2 gamma^i / (gamma + 1), so a quantile read from the buckets
//! is within `a` of the true one. Values below `floor` count in one bucket (a
//! latency under 1 us is "under 1 us"), so for latencies of 1 us to 1000 s at
//! 1 % the sketch holds at most ~1,040 buckets however many values it saw: one
//! array of counts from the lowest bucket used to the highest (8 bytes a bucket).

/// Quantiles of every value added, each within `relative_accuracy` of the true one.
#[derive(Debug, Clone)]
pub struct QuantileSketch {
    floor: f64,
    gamma: f64,
    per_log_gamma: f64,
    floor_index: i64,
    /// Values counted per bucket, from bucket `low` up.
    counts: Vec<u64>,
    low: i64,
    count: u64,
    max: f64,
}

/// A sketch's parameters that describe none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SketchError {
    /// `relative_accuracy` outside (0, 1).
    Accuracy(f64),
    /// `floor` not a finite value above 0.
    Floor(f64),
}

impl std::fmt::Display for SketchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Accuracy(a) => write!(f, "relative_accuracy must be in (0, 1), got {a}"),
            Self::Floor(x) => write!(f, "floor must be a finite value above 0, got {x}"),
        }
    }
}

impl std::error::Error for SketchError {}

impl QuantileSketch {
    /// A sketch within `relative_accuracy` (0 to 1, exclusive) above `floor`
    /// (finite, above 0).
    ///
    /// # Errors
    /// [`SketchError`] for an accuracy outside (0, 1) or another floor.
    pub fn new(relative_accuracy: f64, floor: f64) -> Result<Self, SketchError> {
        if !(relative_accuracy > 0.0 && relative_accuracy < 1.0) {
            return Err(SketchError::Accuracy(relative_accuracy));
        }
        if !(floor > 0.0 && floor.is_finite()) {
            return Err(SketchError::Floor(floor));
        }
        let gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy);
        let per_log_gamma = 1.0 / gamma.ln();
        Ok(Self {
            floor,
            gamma,
            per_log_gamma,
            floor_index: index_of(floor, per_log_gamma),
            counts: Vec::new(),
            low: 0,
            count: 0,
            max: 0.0,
        })
    }

    /// Counts `value` `times` times (negative and NaN values count as the floor,
    /// infinity as the largest finite value).
    pub fn add(&mut self, value: f64, times: u64) {
        let value = if value == f64::INFINITY {
            f64::MAX
        } else {
            value // (NaN stays NaN: not above the floor)
        };
        let index = if value > self.floor {
            index_of(value, self.per_log_gamma)
        } else {
            self.floor_index
        };
        if self.counts.is_empty() {
            self.low = index;
            self.counts.push(0);
        } else if index < self.low {
            let more = usize::try_from(self.low - index).unwrap_or(0);
            self.counts.splice(0..0, std::iter::repeat_n(0, more));
            self.low = index;
        }
        let at = usize::try_from(index - self.low).unwrap_or(0);
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += times;
        self.count += times;
        if value > self.max {
            self.max = value;
        }
    }

    /// The `q` quantile (0 to 1) of the values added; `None` before the first.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let rank = q * (self.count - 1) as f64;
        let mut seen = 0_u64;
        for (at, counted) in self.counts.iter().enumerate() {
            seen += counted;
            #[allow(clippy::cast_precision_loss)]
            if seen as f64 > rank {
                let index = self.low + i64::try_from(at).unwrap_or(i64::MAX);
                if index == self.floor_index {
                    return Some(self.floor);
                }
                #[allow(clippy::cast_possible_truncation)]
                let estimate = 2.0 * self.gamma.powi(index as i32) / (self.gamma + 1.0);
                return Some(estimate.min(self.max));
            }
        }
        Some(self.max)
    }

    /// Values added.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many buckets hold values (the sketch's size).
    #[must_use]
    pub fn buckets(&self) -> usize {
        self.counts.iter().filter(|&&counted| counted != 0).count()
    }

    /// Bytes the counts take (the sketch's memory beyond its fixed fields).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u64>()
    }
}

#[allow(clippy::cast_possible_truncation)]
fn index_of(value: f64, per_log_gamma: f64) -> i64 {
    (value.ln() * per_log_gamma).ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::QuantileSketch;

    #[test]
    fn quantiles_within_the_accuracy_and_the_floor() {
        let mut sketch = QuantileSketch::new(0.01, 1e-6).unwrap();
        assert_eq!(sketch.quantile(0.5), None);
        for ms in 11..20 {
            sketch.add(f64::from(ms) / 1000.0, 1);
        }
        let median = sketch.quantile(0.5).unwrap();
        assert!((median - 0.015).abs() <= 0.015 * 0.01, "{median}");
        assert!((sketch.quantile(1.0).unwrap() - 0.019).abs() <= 0.019 * 0.01);
        sketch.add(-1.0, 3);
        assert_eq!(sketch.quantile(0.0), Some(1e-6));
        assert_eq!(sketch.count(), 12);
        assert!(QuantileSketch::new(1.0, 1e-6).is_err());
        for floor in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            assert!(QuantileSketch::new(0.01, floor).is_err(), "{floor}");
        }
        sketch.add(f64::NAN, 1);
        assert_eq!(sketch.quantile(0.0), Some(1e-6));
        assert!((sketch.quantile(1.0).unwrap() - 0.019).abs() <= 0.019 * 0.01);
        sketch.add(f64::INFINITY, 1);
        assert!(sketch.quantile(1.0).unwrap() > 1e300);
    }

    #[test]
    fn latencies_from_1_us_to_1000_s_take_at_most_1040_buckets() {
        let mut sketch = QuantileSketch::new(0.01, 1e-6).unwrap();
        let mut value = 1e-7;
        while value < 1000.0 {
            sketch.add(value, 1);
            value *= 1.001;
        }
        assert!(sketch.buckets() <= 1_040, "{}", sketch.buckets());
        assert!(sketch.buckets() > 1_000, "{}", sketch.buckets());
        // 8 bytes a bucket, the array grown by doubling: at most 16 KiB
        assert!(
            sketch.memory_bytes() <= 16 * 1_024,
            "{}",
            sketch.memory_bytes()
        );
    }
}
