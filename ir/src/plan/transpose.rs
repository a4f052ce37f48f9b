//! Transpose stages: `out = input` where the input is contiguous along an
//! output dim `p` other than the last (`q`), moved through `tp × tq` tiles
//! of the (`p`, `q`) plane on the vector unit.

use super::{LocalBuf, View, coalesce};
use crate::types::DType;

/// Gather lanes per repeat (the index operand is 4-byte).
pub const LANES: u64 = 64;

/// A copy whose input's contiguous dim is not the output's.
#[derive(Clone, Debug, PartialEq)]
pub struct Transpose {
    /// The input view (same shape as the output).
    pub input: View,
    /// The output view.
    pub out: View,
    /// The output dim along which the input is contiguous.
    pub row_dim: usize,
    /// Tiles and buffers.
    pub schedule: TransposeSchedule,
}

/// How a transpose stage is tiled.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TransposeSchedule {
    /// Tile extent along `p` (the input's contiguous dim).
    pub tp: u64,
    /// Tile extent along `q` (the output's last dim).
    pub tq: u64,
    /// Tiles of the whole output.
    pub tiles: u64,
    /// The UB buffers.
    pub layout: TransposeLayout,
}

/// The UB buffers of a transpose stage (listed in this order).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TransposeLayout {
    /// The loaded tile `A[q][p]` (`a`, two copies).
    pub a: LocalBuf,
    /// The transposed tile `B[p][q]` (`b`, two copies).
    pub b: LocalBuf,
    /// The gather offsets (`idx`).
    pub idx: LocalBuf,
}

impl TransposeLayout {
    /// Every buffer with its listing name, in layout order.
    pub fn named(&self) -> Vec<(String, LocalBuf)> {
        vec![
            ("a".to_string(), self.a),
            ("b".to_string(), self.b),
            ("idx".to_string(), self.idx),
        ]
    }
}

/// The transposed plane of a transpose stage: coalesced extents, input and
/// output strides, and the dims `p` (input contiguous) and `q` (last).
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    /// Coalesced extents.
    pub dims: Vec<u64>,
    /// Input strides over `dims`.
    pub in_strides: Vec<u64>,
    /// Output strides over `dims`.
    pub out_strides: Vec<u64>,
    /// The dim along which the input is contiguous.
    pub p: usize,
    /// The output's last dim.
    pub q: usize,
}

/// Analyses a transpose's views; an error when they are not a transpose
/// (no contiguous input dim, or an output not contiguous along its last).
pub fn plane(input: &View, out: &View) -> Result<Plane, String> {
    let (dims, st) = coalesce(&out.shape, &[&input.strides, &out.strides]);
    let q = dims.len() - 1;
    let p = (0..dims.len())
        .rev()
        .find(|&d| d != q && st[0][d] == 1 && dims[d] > 1)
        .ok_or_else(|| "internal: a transpose input with no contiguous dim".to_string())?;
    if st[1][q] != 1 {
        return Err("internal: a transpose output must be contiguous along its last dim".into());
    }
    Ok(Plane {
        in_strides: st[0].clone(),
        out_strides: st[1].clone(),
        dims,
        p,
        q,
    })
}

/// Pitches of the two UB tiles: `A` rows hold `tp` elements, `B` rows `tq`.
pub fn pitches(dtype: DType, tp: u64, tq: u64) -> (u64, u64) {
    let unit = 32 / dtype.size_bytes() as u64;
    (
        tp.div_ceil(unit) * unit,
        tq.div_ceil(LANES.max(unit)) * LANES.max(unit),
    )
}
