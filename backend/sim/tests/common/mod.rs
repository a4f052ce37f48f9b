//! Helpers shared by the integration tests: a minimal .npy reader, tensor
//! conversions and the tolerance check of language.md.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use tessera_sim::{Dt, Tensor};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reads a little-endian, C-order .npy file (f2, f4, i1, i4, b1).
pub fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    let descr = header
        .split("'descr':")
        .nth(1)
        .unwrap()
        .split('\'')
        .nth(1)
        .unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let dtype = match descr {
        "<f2" => Dt::F16,
        "<f4" => Dt::F32,
        "|i1" => Dt::I8,
        "<i4" => Dt::I32,
        "|b1" => Dt::B8,
        d => panic!("unsupported dtype {d}"),
    };
    let shape_text = header.split("'shape':").nth(1).unwrap();
    let shape_text = &shape_text[shape_text.find('(').unwrap() + 1..shape_text.find(')').unwrap()];
    let shape: Vec<u64> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    Tensor {
        dtype,
        shape,
        data: bytes[start + hlen..].to_vec(),
    }
}

/// Elements as f64.
pub fn values(t: &Tensor) -> Vec<f64> {
    let s = t.dtype.size() as usize;
    t.data
        .chunks(s)
        .map(|c| match t.dtype {
            Dt::F16 => half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64(),
            Dt::Bf16 => half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64(),
            Dt::F32 => f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            Dt::I32 => f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            Dt::I8 => f64::from(c[0] as i8),
            Dt::B8 => f64::from(c[0]),
        })
        .collect()
}

/// A tensor from f32 values.
pub fn f32_tensor(shape: &[u64], v: &[f32]) -> Tensor {
    Tensor {
        dtype: Dt::F32,
        shape: shape.to_vec(),
        data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Checks `got` against `want` with `|d| <= atol + rtol * |want|`; returns the max errors.
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> (f64, f64) {
    assert_eq!(got.shape, want.shape, "{name}: shape");
    let (g, w) = (values(got), values(want));
    let mut max_abs: f64 = 0.0;
    let mut max_rel: f64 = 0.0;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let d = (a - b).abs();
        assert!(
            d <= atol + rtol * b.abs(),
            "{name}[{i}]: got {a}, want {b} (|d| = {d})"
        );
        max_abs = max_abs.max(d);
        if b.abs() > 0.0 {
            max_rel = max_rel.max(d / b.abs());
        }
    }
    (max_abs, max_rel)
}

/// Tolerances of language.md by class.
pub fn tolerance(class: &str) -> (f64, f64) {
    match class {
        "f32" => (1e-5, 1e-4),
        "f32-reduction" => (1e-4, 1e-3),
        "f16" => (1e-3, 1e-2),
        "bf16" => (1e-2, 2e-2),
        c => panic!("unknown tolerance class {c}"),
    }
}

/// The value of a `;@ key: value` header line.
pub fn directive<'a>(src: &'a str, key: &str) -> Option<&'a str> {
    src.lines().find_map(|l| {
        l.strip_prefix(";@")
            .and_then(|r| r.trim().strip_prefix(key))
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The machine named by `.machine` (default machine otherwise).
pub fn machine_of(src: &str) -> tessera_sim::Machine {
    let name = src
        .lines()
        .find_map(|l| l.trim().strip_prefix(".machine"))
        .map(str::trim);
    match name {
        Some(n) => tessera_sim::Machine::builtin(n).unwrap(),
        None => tessera_sim::Machine::default(),
    }
}
