//! Host tensors: the values the reference interpreter computes with and the
//! CLI reads and writes.
//!
//! Floats are held as `f64` values that are exactly representable in the
//! tensor's dtype (the interpreter rounds after every op), integers as `i64`
//! values inside the dtype's range. [`Tensor::to_le_bytes`] and
//! [`Tensor::from_le_bytes`] convert to and from the packed little-endian
//! memory layout (bf16 as its 16-bit pattern, bool as one byte).

use crate::types::DType;
use half::{bf16, f16};

/// Element storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// `f16`, `bf16`, `f32` values.
    Float(Vec<f64>),
    /// `i8`, `i32` values.
    Int(Vec<i64>),
    /// `bool` values.
    Bool(Vec<bool>),
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::Float(v) => v.len(),
            Data::Int(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense, row-major tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Extents, outermost first.
    pub shape: Vec<usize>,
    /// Elements, row-major.
    pub data: Data,
}

/// Bytes could not be read as a tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutError {
    /// Bytes expected.
    pub expected: usize,
    /// Bytes found.
    pub found: usize,
}

impl Tensor {
    /// Element count of a shape (`None` on overflow).
    pub fn count(shape: &[usize]) -> Option<usize> {
        shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// A tensor from float values (rounded to `dtype`).
    pub fn from_f64(dtype: DType, shape: Vec<usize>, values: Vec<f64>) -> Tensor {
        let data = match dtype {
            DType::F16 | DType::BF16 | DType::F32 => {
                Data::Float(values.into_iter().map(|x| dtype.round_float(x)).collect())
            }
            DType::I8 | DType::I32 => {
                Data::Int(values.into_iter().map(|x| dtype.float_to_int(x)).collect())
            }
            DType::Bool => Data::Bool(values.into_iter().map(|x| x != 0.0).collect()),
        };
        Tensor { dtype, shape, data }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Element `i` as `f64` (bools as 0/1).
    pub fn get_f64(&self, i: usize) -> f64 {
        match &self.data {
            Data::Float(v) => v[i],
            Data::Int(v) => v[i] as f64,
            Data::Bool(v) => f64::from(u8::from(v[i])),
        }
    }

    /// The packed little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.dtype.size_bytes());
        match &self.data {
            Data::Float(v) => {
                for &x in v {
                    match self.dtype {
                        DType::F16 => out.extend_from_slice(&f16::from_f64(x).to_le_bytes()),
                        DType::BF16 => out.extend_from_slice(&bf16::from_f64(x).to_le_bytes()),
                        _ => out.extend_from_slice(&(x as f32).to_le_bytes()),
                    }
                }
            }
            Data::Int(v) => {
                for &x in v {
                    match self.dtype {
                        DType::I8 => out.push(x as i8 as u8),
                        _ => out.extend_from_slice(&(x as i32).to_le_bytes()),
                    }
                }
            }
            Data::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        }
        out
    }

    /// Reads packed little-endian bytes.
    pub fn from_le_bytes(
        dtype: DType,
        shape: Vec<usize>,
        bytes: &[u8],
    ) -> Result<Tensor, LayoutError> {
        let n = Tensor::count(&shape).unwrap_or(usize::MAX);
        let size = dtype.size_bytes();
        let expected = n.saturating_mul(size);
        if bytes.len() != expected {
            return Err(LayoutError {
                expected,
                found: bytes.len(),
            });
        }
        let data = match dtype {
            DType::F16 => Data::Float(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f64())
                    .collect(),
            ),
            DType::BF16 => Data::Float(
                bytes
                    .chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f64())
                    .collect(),
            ),
            DType::F32 => Data::Float(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect(),
            ),
            DType::I8 => Data::Int(bytes.iter().map(|&b| b as i8 as i64).collect()),
            DType::I32 => Data::Int(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
        };
        Ok(Tensor { dtype, shape, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_every_dtype() {
        for dtype in DType::ALL {
            let t = Tensor::from_f64(dtype, vec![2, 2], vec![1.0, -2.0, 0.5, 0.0]);
            let back = Tensor::from_le_bytes(dtype, vec![2, 2], &t.to_le_bytes()).unwrap();
            assert_eq!(back, t, "{dtype}");
        }
        assert!(Tensor::from_le_bytes(DType::F32, vec![2], &[0; 7]).is_err());
    }

    #[test]
    fn bf16_bytes_are_the_high_half_of_f32() {
        let t = Tensor::from_f64(DType::BF16, vec![1], vec![1.0]);
        assert_eq!(t.to_le_bytes(), vec![0x80, 0x3f]);
    }
}
