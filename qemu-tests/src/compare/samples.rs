//! Repeated measurements of one figure: their minimum, median and maximum.

/// The figures of one measure over the repetitions of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds one figure.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// How many figures there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The smallest figure.
    pub fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }

    /// The largest figure.
    pub fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }

    /// The median (the mean of the middle two for an even count).
    pub fn median(&self) -> Option<f64> {
        let sorted = self.sorted();
        let middle = sorted.len() / 2;
        match sorted.len() {
            0 => None,
            n if n % 2 == 1 => Some(sorted[middle]),
            _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
        }
    }

    /// `median (min–max)`, each written by `format`; `–` without figures.
    pub fn cell(&self, format: impl Fn(f64) -> String) -> String {
        match (self.min(), self.median(), self.max()) {
            (Some(min), Some(median), Some(max)) if self.len() > 1 => {
                format!("{} ({}–{})", format(median), format(min), format(max))
            }
            (_, Some(median), _) => format(median),
            _ => "–".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_median_and_maximum_of_odd_and_even_counts() {
        let mut samples = Samples::default();
        assert_eq!(samples.median(), None);
        assert_eq!(samples.cell(|v| format!("{v}")), "–");
        for value in [3.0, 1.0, 2.0] {
            samples.push(value);
        }
        assert_eq!(
            (samples.min(), samples.median(), samples.max()),
            (Some(1.0), Some(2.0), Some(3.0))
        );
        assert_eq!(samples.cell(|v| format!("{v:.1}")), "2.0 (1.0–3.0)");
        samples.push(10.0);
        assert_eq!(samples.median(), Some(2.5));
    }
}
