//! Bad inputs give errors that name what is wrong, never panics.

#![allow(clippy::unwrap_used)]

use boltz_core::{Batch, Dataset, Error, Matrix};

#[test]
fn batch_constructor_rejects_bad_inputs() {
    assert!(matches!(Batch::<f64>::new(0, 3, 2, vec![]), Err(Error::EmptyBatch)));
    assert!(matches!(Batch::<f64>::new(2, 0, 2, vec![]), Err(Error::ZeroSize { .. })));
    assert!(matches!(Batch::<f64>::new(2, 3, 0, vec![]), Err(Error::ZeroSize { .. })));
    assert!(matches!(Batch::<f64>::new(2, 3, 2, vec![0.0; 11]), Err(Error::ShapeMismatch { .. })));
    let mut data = vec![0.5f32; 12];
    data[9] = f32::NAN;
    let err = Batch::new(2, 3, 2, data).unwrap_err();
    assert!(matches!(err, Error::NonFinite { ref location } if location == "input[1][1][1]"), "{err}");
    let mut data = vec![0.5f64; 12];
    data[0] = f64::NEG_INFINITY;
    assert!(matches!(Batch::new(2, 3, 2, data), Err(Error::NonFinite { .. })));
    // Overflow on conversion to a narrower type is an error too.
    let wide = Batch::new(1, 1, 1, vec![1e300f64]).unwrap();
    assert!(matches!(wide.convert::<f32>(), Err(Error::NonFinite { .. })));
    assert!(matches!(Batch::<f64>::from_sequences(2, 2, &[vec![0.0; 4], vec![0.0; 3]]), Err(Error::ShapeMismatch { .. })));
    assert!(Batch::new(2, 1, 1, vec![1.0, 2.0]).unwrap().slice(1..1).is_err());
}

#[test]
fn matrices_and_datasets_check_shapes() {
    assert!(matches!(Matrix::<f64>::new(2, 3, vec![0.0; 5]), Err(Error::ShapeMismatch { .. })));
    let x = Batch::new(1, 2, 2, vec![0.0f64; 4]).unwrap();
    let y = Batch::new(1, 2, 1, vec![0.0f64; 2]).unwrap();
    let err = Dataset::new(x, y, None).unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
}
