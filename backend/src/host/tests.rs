//! Host kernels against the reference interpreter on small IR programs
//! (exact ops bit for bit).

use super::HostKernel;
use tessera_ir::interp;
use tessera_ir::text::parse_module;
use tessera_ir::{DType, Tensor};

fn run(src: &str, inputs: &[Tensor]) -> Vec<Tensor> {
    let m = parse_module(src).unwrap();
    let k = &m.kernels[0];
    let host = HostKernel::compile(k).unwrap();
    host.run(inputs).unwrap()
}

#[test]
fn matmul_transpose_slice_concat_by_hand() {
    let src = "kernel k(%a: f32[2, 3], %b: f32[3, 2]) -> (p: f32[2, 2], t: f32[3, 2], s: f32[2, 2], c: f32[2, 5]) {
  %0 = matmul %a, %b : f32[2, 2]
  %1 = transpose %a perm=[1, 0] : f32[3, 2]
  %2 = slice %a axis=1 start=1 end=3 : f32[2, 2]
  %3 = concat %a, %0 axis=1 : f32[2, 5]
  return %0, %1, %2, %3
}
";
    let f = |shape: Vec<usize>, v: &[f64]| Tensor::from_f64(DType::F32, shape, v.to_vec());
    let a = f(vec![2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f(vec![3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let out = run(src, &[a, b]);
    assert_eq!(out[0], f(vec![2, 2], &[4.0, 5.0, 10.0, 11.0]));
    assert_eq!(out[1], f(vec![3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
    assert_eq!(out[2], f(vec![2, 2], &[2.0, 3.0, 5.0, 6.0]));
    assert_eq!(
        out[3],
        f(
            vec![2, 5],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 5.0, 6.0, 10.0, 11.0]
        )
    );
}

#[test]
fn integer_division_by_zero_is_reported() {
    let src = "kernel k(%a: i32[2], %b: i32[2]) -> (out0: i32[2]) {\n  %0 = div %a, %b : i32[2]\n  return %0\n}\n";
    let m = parse_module(src).unwrap();
    let host = HostKernel::compile(&m.kernels[0]).unwrap();
    let a = Tensor::from_f64(DType::I32, vec![2], vec![-2147483648.0, -7.0]);
    let ok = Tensor::from_f64(DType::I32, vec![2], vec![-1.0, 2.0]);
    // MIN / -1 wraps; -7 / 2 truncates.
    assert_eq!(
        host.run(&[a.clone(), ok]).unwrap()[0],
        Tensor::from_f64(DType::I32, vec![2], vec![-2147483648.0, -3.0])
    );
    let zero = Tensor::from_f64(DType::I32, vec![2], vec![1.0, 0.0]);
    assert_eq!(
        host.run(&[a, zero]),
        Err(super::HostError::DivByZero { node: 0 })
    );
}

/// Every f16 and bf16 bit pattern through a cast to f32 and back, and every
/// f32 rounding case the conversion has (ties, subnormals, overflow).
#[test]
fn f16_and_bf16_conversions_match_the_reference_bit_for_bit() {
    for (dt, name) in [(DType::F16, "f16"), (DType::BF16, "bf16")] {
        let src = format!(
            "kernel k(%a: f32[N]) -> (out0: {name}[N]) {{\n  %0 = cast %a : {name}[N]\n  return %0\n}}\n"
        );
        // f32 inputs around every rounding boundary of the target.
        let mut xs: Vec<f64> = Vec::new();
        for bits in (0u32..0x8000_0000).step_by(0x1fff) {
            xs.push(f32::from_bits(bits) as f64);
            xs.push(-(f32::from_bits(bits) as f64));
        }
        for e in -30..20 {
            for t in [
                0.5,
                0.75,
                1.0 + 1.0 / 2048.0,
                1.0 + 1.0 / 1024.0 + 1.0 / 2048.0,
                1.0 + 1.0 / 256.0,
            ] {
                xs.push(t * 2f64.powi(e));
            }
        }
        xs.extend([
            65504.0,
            65519.0,
            65520.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            0.0,
            -0.0,
        ]);
        let n = xs.len();
        let src = src.replace('N', &n.to_string());
        let m = parse_module(&src).unwrap();
        let k = &m.kernels[0];
        let input = Tensor::from_f64(DType::F32, vec![n], xs);
        let want = interp::run(k, std::slice::from_ref(&input)).unwrap();
        let got = HostKernel::compile(k).unwrap().run(&[input]).unwrap();
        let (w, g) = (want[0].to_le_bytes(), got[0].to_le_bytes());
        let bad = w
            .chunks(2)
            .zip(g.chunks(2))
            .filter(|(a, b)| a != b && !(dt == DType::F16 && is_nan16(a) && is_nan16(b)))
            .count();
        assert_eq!(bad, 0, "{name}: {bad} of {n} differ");
    }
}

fn is_nan16(b: &[u8]) -> bool {
    let h = u16::from_le_bytes([b[0], b[1]]);
    h & 0x7c00 == 0x7c00 && h & 0x3ff != 0
}
