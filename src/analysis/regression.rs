//! Coefficients of determination (R^2) of test accuracy against one
//! predictor, pooled over (run, checkpoint) points.
//!
//! R^2 about a line is `1 - sum (y - f(x))^2 / sum (y - mean y)^2`. It is
//! undefined (`None`) when the test accuracies have no spread, because the
//! denominator is then zero, and for too few points. A least-squares line
//! through 2 points always gives R^2 = 1, so it needs at least 3.

use serde::{Deserialize, Serialize};

/// Minimum number of points for a least-squares fit to say anything.
pub const MIN_LINE_POINTS: usize = 3;

/// Spread below which a sum of squared deviations counts as zero, relative
/// to the number of points (values are accuracies or NLLs of order 1).
const ZERO_SPREAD: f64 = 1e-12;

/// A least-squares line `y = slope * x + intercept` and its R^2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LineFit {
    pub slope: f64,
    pub intercept: f64,
    /// `None` when the y values have no spread.
    pub r2: Option<f64>,
}

impl LineFit {
    pub fn predict(&self, x: f64) -> f64 {
        self.slope * x + self.intercept
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sum of squared deviations from the mean, or `None` when it is zero.
fn total_sum_of_squares(y: &[f64]) -> Option<f64> {
    if y.is_empty() {
        return None;
    }
    let m = mean(y);
    let total: f64 = y.iter().map(|v| (v - m).powi(2)).sum();
    (total > ZERO_SPREAD * y.len() as f64).then_some(total)
}

/// R^2 of the prediction `y = f(x)`.
fn r2_about(x: &[f64], y: &[f64], f: impl Fn(f64) -> f64) -> Option<f64> {
    let total = total_sum_of_squares(y)?;
    let residual: f64 = x.iter().zip(y).map(|(x, y)| (y - f(*x)).powi(2)).sum();
    Some(1.0 - residual / total)
}

/// R^2 about the line y = x: how well the predictor equals test accuracy,
/// not only correlates with it. Needs at least 2 points.
pub fn r2_identity(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    r2_about(x, y, |v| v)
}

/// Ordinary least-squares line of `y` on `x`. `None` for fewer than
/// [`MIN_LINE_POINTS`] points or when `x` has no spread (no unique slope).
pub fn least_squares(x: &[f64], y: &[f64]) -> Option<LineFit> {
    if x.len() != y.len() || x.len() < MIN_LINE_POINTS {
        return None;
    }
    let sxx = total_sum_of_squares(x)?;
    let (mx, my) = (mean(x), mean(y));
    let sxy: f64 = x.iter().zip(y).map(|(x, y)| (x - mx) * (y - my)).sum();

    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r2 = r2_about(x, y, |v| slope * v + intercept);
    Some(LineFit { slope, intercept, r2 })
}

/// Leave-one-group-out mean absolute error: for each group (run), fits a
/// line on the other groups' points and predicts this group's `y`; returns
/// the mean |error| over all held-out points. `None` for fewer than 2
/// groups or when any held-out fit is undefined.
pub fn leave_one_group_out_mae(groups: &[usize], x: &[f64], y: &[f64]) -> Option<f64> {
    let mut distinct: Vec<usize> = groups.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 2 || groups.len() != x.len() || x.len() != y.len() {
        return None;
    }

    let mut error_sum = 0.0;
    for held_out in distinct {
        let (mut train_x, mut train_y) = (Vec::new(), Vec::new());
        for i in 0..x.len() {
            if groups[i] != held_out {
                train_x.push(x[i]);
                train_y.push(y[i]);
            }
        }
        let fit = least_squares(&train_x, &train_y)?;
        for i in 0..x.len() {
            if groups[i] == held_out {
                error_sum += (y[i] - fit.predict(x[i])).abs();
            }
        }
    }
    Some(error_sum / x.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn line_recovers_exact_line() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [1.0, 3.0, 5.0, 7.0];
        let fit = least_squares(&x, &y).unwrap();
        assert!(close(fit.slope, 2.0));
        assert!(close(fit.intercept, 1.0));
        assert!(close(fit.r2.unwrap(), 1.0));
    }

    #[test]
    fn line_known_noisy_data() {
        // x = [1, 2, 3], y = [1, 3, 2]: sxx = 2, sxy = 1, slope 0.5,
        // intercept 1; residuals -0.5, 1, -0.5 give SSE 1.5; SST 2.
        let fit = least_squares(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap();
        assert!(close(fit.slope, 0.5));
        assert!(close(fit.intercept, 1.0));
        assert!(close(fit.r2.unwrap(), 0.25));
    }

    #[test]
    fn identity_known_data() {
        // y = [0.2, 0.4, 0.6], x = [0.3, 0.4, 0.5]: SSE 0.02, SST 0.08.
        let r2 = r2_identity(&[0.3, 0.4, 0.5], &[0.2, 0.4, 0.6]).unwrap();
        assert!(close(r2, 0.75));
    }

    #[test]
    fn identity_can_be_negative() {
        let r2 = r2_identity(&[0.9, 0.9, 0.9], &[0.1, 0.2, 0.3]).unwrap();
        assert!(r2 < 0.0);
    }

    #[test]
    fn r2_undefined_cases() {
        let flat_y = [0.5, 0.5, 0.5];
        assert_eq!(r2_identity(&[0.1, 0.2, 0.3], &flat_y), None);
        assert_eq!(least_squares(&[0.1, 0.2, 0.3], &flat_y).unwrap().r2, None);
        assert_eq!(least_squares(&[0.4, 0.4, 0.4], &[0.1, 0.2, 0.3]), None);
        assert_eq!(least_squares(&[0.1, 0.2], &[0.1, 0.3]), None);
        assert_eq!(r2_identity(&[0.1], &[0.1]), None);
        assert_eq!(r2_identity(&[], &[]), None);
    }

    #[test]
    fn leave_one_out_known_data() {
        // Two groups on the same exact line: every held-out prediction is
        // exact, so the error is 0.
        let groups = [0, 0, 0, 1, 1, 1];
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let y: Vec<f64> = x.iter().map(|v| 0.5 * v + 0.1).collect();
        assert!(close(leave_one_group_out_mae(&groups, &x, &y).unwrap(), 0.0));

        // Group 1 lies 1 above group 0's line (y = x): predicting it from
        // group 0 misses by 1, and vice versa.
        let y2 = [0.0, 1.0, 2.0, 4.0, 5.0, 6.0];
        assert!(close(leave_one_group_out_mae(&groups, &x, &y2).unwrap(), 1.0));
    }

    #[test]
    fn leave_one_out_single_group_undefined() {
        assert_eq!(leave_one_group_out_mae(&[0, 0, 0], &[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), None);
    }
}
