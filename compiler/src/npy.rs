//! `.npy` files: reading with full validation, writing through `npyz`.
//!
//! Reading is done here rather than by `npyz` because a hostile header must
//! produce an error, never a panic: `npyz` multiplies the dims of the header's
//! shape without overflow checks. The format (numpy's NEP 1, versions 1.0 to
//! 3.0) is a magic string, a version, a header length, a Python dict literal
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` and the raw
//! data. Only little-endian C-order arrays of the dtypes of cli.md are
//! accepted; every error names the file and, where it helps, a byte offset.

use npyz::WriterBuilder;
use std::io::Write;
use tessera_ir::{Code, DType, Diagnostic, Tensor};

/// A parsed `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The dtype descriptor, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is in Fortran order.
    pub fortran_order: bool,
    /// The shape.
    pub shape: Vec<u64>,
    /// The raw data bytes.
    pub data: Vec<u8>,
}

/// Why a `.npy` file could not be read.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> NpyError {
    NpyError {
        offset,
        message: message.into(),
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// The largest header read (docs/cli.md, "Limits"): numpy writes a few
/// hundred bytes, and refuses headers this large itself.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(err(
            0,
            "not an .npy file (missing the \\x93NUMPY magic string)",
        ));
    }
    let major = *bytes
        .get(6)
        .ok_or_else(|| err(6, "file ends inside the version"))?;
    let minor = *bytes
        .get(7)
        .ok_or_else(|| err(7, "file ends inside the version"))?;
    let (len_bytes, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => {
            return Err(err(
                6,
                format!("unsupported .npy format version {major}.{minor}"),
            ));
        }
    };
    let len_at = 8;
    let len_end = len_at + len_bytes;
    if bytes.len() < len_end {
        return Err(err(len_at, "file ends inside the header length"));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    if header_len > MAX_HEADER_BYTES {
        return Err(err(
            len_at,
            format!(
                "the header claims {header_len} bytes; the limit is {MAX_HEADER_BYTES} (1 MiB)"
            ),
        ));
    }
    let data_at = len_end
        .checked_add(header_len)
        .ok_or_else(|| err(len_at, "header length overflows"))?;
    if bytes.len() < data_at {
        return Err(err(
            len_end,
            format!(
                "the header claims {header_len} bytes but the file ends after {}",
                bytes.len() - len_end
            ),
        ));
    }
    let raw = &bytes[len_end..data_at];
    let text = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|e| err(len_end + e.valid_up_to(), "header is not UTF-8"))?
    } else {
        if let Some(p) = raw.iter().position(|b| !b.is_ascii()) {
            return Err(err(len_end + p, "header is not ASCII"));
        }
        std::str::from_utf8(raw).map_err(|_| err(len_end, "header is not ASCII"))?
    };
    let (descr, fortran_order, shape) =
        parse_header_dict(text).map_err(|(o, m)| err(len_end + o, m))?;
    let item = descr_item_size(&descr)
        .ok_or_else(|| err(len_end, format!("unsupported dtype descriptor '{descr}'")))?;
    let count = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(len_end, "the shape's element count overflows"))?;
    let need = count
        .checked_mul(item as u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| err(len_end, "the data size overflows"))?;
    let have = bytes.len() - data_at;
    if have != need {
        return Err(err(
            data_at,
            format!(
                "the data is {have} bytes, but shape {:?} of '{descr}' needs {need}{}",
                shape,
                if have < need { " (truncated file)" } else { "" }
            ),
        ));
    }
    Ok(NpyArray {
        descr,
        fortran_order,
        shape,
        data: bytes[data_at..].to_vec(),
    })
}

fn descr_item_size(descr: &str) -> Option<usize> {
    let mut chars = descr.chars();
    let order = chars.next()?;
    if !matches!(order, '<' | '>' | '|' | '=') {
        return None;
    }
    let kind = chars.next()?;
    if !kind.is_ascii_alphabetic() {
        return None;
    }
    let size: usize = chars.as_str().parse().ok()?;
    // A unicode string's size counts 4-byte characters.
    let bytes = match kind {
        'U' => size.checked_mul(4)?,
        'b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'a' | 'V' | 'm' | 'M' => size,
        _ => return None,
    };
    (1..=256).contains(&bytes).then_some(bytes)
}

/// A value of the header dict.
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header_dict(text: &str) -> Result<(String, bool, Vec<u64>), (usize, String)> {
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    let expect = |i: &mut usize, c: u8| -> Result<(), (usize, String)> {
        ws(i);
        if *i < b.len() && b[*i] == c {
            *i += 1;
            Ok(())
        } else {
            Err((*i, format!("expected `{}` in the header", c as char)))
        }
    };
    let string = |i: &mut usize| -> Result<String, (usize, String)> {
        ws(i);
        let q = *b.get(*i).ok_or((*i, "header ends early".to_string()))?;
        if q != b'\'' && q != b'"' {
            return Err((*i, "expected a quoted string in the header".to_string()));
        }
        let start = *i + 1;
        let end = b[start..]
            .iter()
            .position(|&c| c == q)
            .ok_or((*i, "unterminated string in the header".to_string()))?;
        *i = start + end + 1;
        Ok(text[start..start + end].to_string())
    };
    expect(&mut i, b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        ws(&mut i);
        if i < b.len() && b[i] == b'}' {
            break;
        }
        let key_at = i;
        let key = string(&mut i)?;
        expect(&mut i, b':')?;
        ws(&mut i);
        let value = if text[i..].starts_with("True") {
            i += 4;
            PyValue::Bool(true)
        } else if text[i..].starts_with("False") {
            i += 5;
            PyValue::Bool(false)
        } else if i < b.len() && b[i] == b'(' {
            i += 1;
            let mut dims = Vec::new();
            loop {
                ws(&mut i);
                if i < b.len() && b[i] == b')' {
                    i += 1;
                    break;
                }
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: u64 = text[start..i]
                    .parse()
                    .map_err(|_| (start, "expected a dim in the shape".to_string()))?;
                dims.push(n);
                ws(&mut i);
                if i < b.len() && b[i] == b',' {
                    i += 1;
                } else if !(i < b.len() && b[i] == b')') {
                    return Err((i, "expected `,` or `)` in the shape".to_string()));
                }
            }
            PyValue::Tuple(dims)
        } else if i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
            PyValue::Str(string(&mut i)?)
        } else {
            return Err((i, format!("unsupported value for '{key}' in the header")));
        };
        match (key.as_str(), value) {
            ("descr", PyValue::Str(s)) => descr = Some(s),
            ("fortran_order", PyValue::Bool(f)) => fortran = Some(f),
            ("shape", PyValue::Tuple(t)) => shape = Some(t),
            (k, _) => {
                return Err((
                    key_at,
                    format!("unexpected or ill-typed key '{k}' in the header"),
                ));
            }
        }
        ws(&mut i);
        if i < b.len() && b[i] == b',' {
            i += 1;
        }
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err((
            0,
            "the header must have 'descr', 'fortran_order' and 'shape'".to_string(),
        )),
    }
}

/// The `.npy` descriptor that carries a dtype (bf16 travels as `<f4`).
pub fn descr_of(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "<f2",
        DType::BF16 | DType::F32 => "<f4",
        DType::I8 => "|i1",
        DType::I32 => "<i4",
        DType::Bool => "|b1",
    }
}

/// Reads a tensor of the expected dtype from a parsed file. The shape is
/// checked by the caller (it may bind symbolic dims).
pub fn to_tensor(a: &NpyArray, dtype: DType, what: &str) -> Result<Tensor, Diagnostic> {
    let order = a.descr.chars().next().unwrap_or('|');
    if a.fortran_order || order == '>' {
        let why = if a.fortran_order {
            "Fortran order"
        } else {
            "big-endian"
        };
        return Err(Diagnostic::new(Code::E0604, format!("{what} is stored in {why}"))
            .help("save it from numpy in C order and little-endian: `np.save(path, np.ascontiguousarray(a, dtype=a.dtype.newbyteorder('<')))`"));
    }
    let want = descr_of(dtype);
    let same = a.descr == want
        || (a.descr.len() == 3
            && want.len() == 3
            && a.descr[1..] == want[1..]
            && matches!(order, '<' | '|' | '='));
    if !same {
        let mut d = Diagnostic::new(
            Code::E0602,
            format!(
                "{what} has dtype '{}', but the parameter is {dtype} (expects '{want}')",
                a.descr
            ),
        );
        if dtype == DType::BF16 {
            d = d.note("bf16 tensors travel as '<f4' files and are rounded on load");
        }
        return Err(d.help(format!(
            "convert it with `a.astype('{want}')` before saving"
        )));
    }
    let shape: Vec<usize> = a
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| Diagnostic::new(Code::E0601, format!("{what}: shape too large")))?;
    let file_dtype = if dtype == DType::BF16 {
        DType::F32
    } else {
        dtype
    };
    let t = Tensor::from_le_bytes(file_dtype, shape.clone(), &a.data).map_err(|e| {
        Diagnostic::new(
            Code::E0601,
            format!(
                "{what}: expected {} data bytes, found {}",
                e.expected, e.found
            ),
        )
    })?;
    if dtype == DType::BF16 {
        let values = (0..t.len()).map(|i| t.get_f64(i)).collect();
        return Ok(Tensor::from_f64(DType::BF16, shape, values));
    }
    Ok(t)
}

/// Encodes a tensor as `.npy` bytes (format 1.0).
pub fn encode(t: &Tensor) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    macro_rules! write_all {
        ($ty:ty, $iter:expr) => {{
            let mut w = npyz::WriteOptions::<$ty>::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut buf)
                .begin_nd()?;
            w.extend($iter)?;
            w.finish()?;
        }};
    }
    let n = t.len();
    match t.dtype {
        DType::F16 => write_all!(half::f16, (0..n).map(|i| half::f16::from_f64(t.get_f64(i)))),
        DType::BF16 | DType::F32 => write_all!(f32, (0..n).map(|i| t.get_f64(i) as f32)),
        DType::I8 => write_all!(i8, (0..n).map(|i| t.get_f64(i) as i8)),
        DType::I32 => write_all!(i32, (0..n).map(|i| t.get_f64(i) as i32)),
        DType::Bool => write_all!(bool, (0..n).map(|i| t.get_f64(i) != 0.0)),
    }
    Ok(buf)
}

/// Writes a tensor to a `.npy` file.
pub fn write(path: &std::path::Path, t: &Tensor) -> std::io::Result<()> {
    let bytes = encode(t)?;
    let mut f = std::fs::File::create(path)?;
    f.write_all(&bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: (u8, u8), dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([version.0, version.1]);
        let mut h = dict.to_string();
        let len_bytes = if version.0 == 1 { 2 } else { 4 };
        while !(MAGIC.len() + 2 + len_bytes + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        if version.0 == 1 {
            out.extend((h.len() as u16).to_le_bytes());
        } else {
            out.extend((h.len() as u32).to_le_bytes());
        }
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn round_trips_through_npyz_writer() {
        for dtype in DType::ALL {
            let t = Tensor::from_f64(dtype, vec![2, 3], vec![1.0, -2.0, 0.0, 3.0, 1.0, 0.0]);
            let a = parse(&encode(&t).unwrap()).unwrap();
            assert_eq!(a.descr, descr_of(dtype), "{dtype}");
            assert_eq!(to_tensor(&a, dtype, "x").unwrap(), t, "{dtype}");
        }
    }

    #[test]
    fn reads_versions_2_and_3() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        for v in [(2, 0), (3, 0)] {
            let a = parse(&header(v, dict, &[0, 0, 128, 63, 0, 0, 0, 64])).unwrap();
            assert_eq!(a.shape, vec![2]);
        }
    }

    #[test]
    fn rejects_hostile_headers_without_panicking() {
        let cases: &[&[u8]] = &[b"", b"\x93NUMPY", b"\x93NUMPY\x09\x00\x10\x00", b"garbage!"];
        for c in cases {
            assert!(parse(c).is_err());
        }
        let huge = "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 18446744073709551615), }";
        assert!(
            parse(&header((1, 0), huge, &[]))
                .unwrap_err()
                .message
                .contains("overflows")
        );
        // A header over the limit, however valid (2.0: a four-byte length).
        let padded = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }}{}",
            " ".repeat(MAX_HEADER_BYTES)
        );
        let big = parse(&header((2, 0), &padded, &[0; 4])).unwrap_err();
        assert!(big.message.contains("limit"), "{}", big.message);
        let at_limit = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }}{}",
            " ".repeat(MAX_HEADER_BYTES - 200)
        );
        assert!(parse(&header((2, 0), &at_limit, &[0; 4])).is_ok());
        let truncated = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
        assert!(
            parse(&header((1, 0), truncated, &[0; 7]))
                .unwrap_err()
                .message
                .contains("truncated")
        );
    }

    #[test]
    fn dtype_order_and_endianness_are_checked() {
        let be = parse(&header(
            (1, 0),
            "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
            &[0; 4],
        ))
        .unwrap();
        assert_eq!(to_tensor(&be, DType::F32, "x").unwrap_err().code, "E0604");
        let f = parse(&header(
            (1, 0),
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
            &[0; 4],
        ))
        .unwrap();
        assert_eq!(to_tensor(&f, DType::F32, "x").unwrap_err().code, "E0604");
        let f8 = parse(&header(
            (1, 0),
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        ))
        .unwrap();
        assert_eq!(to_tensor(&f8, DType::F32, "x").unwrap_err().code, "E0602");
    }
}
