//! Host kernels against the reference interpreter on small IR programs
//! (exact ops bit for bit).

use super::HostKernel;
use tessera_ir::compare::{Rule, compare};
use tessera_ir::interp;
use tessera_ir::text::parse_module;
use tessera_ir::{DType, Tensor};

fn run(src: &str, inputs: &[Tensor]) -> Vec<Tensor> {
    let m = parse_module(src).unwrap();
    let k = &m.kernels[0];
    let host = HostKernel::compile(k).unwrap();
    host.run(inputs, None).unwrap()
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
        host.run(&[a.clone(), ok], None).unwrap()[0],
        Tensor::from_f64(DType::I32, vec![2], vec![-2147483648.0, -3.0])
    );
    let zero = Tensor::from_f64(DType::I32, vec![2], vec![1.0, 0.0]);
    assert_eq!(
        host.run(&[a, zero], None),
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
        let got = HostKernel::compile(k).unwrap().run(&[input], None).unwrap();
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

/// An elementwise chain is one loop nest (no intermediate arrays); a
/// reduction over rows and what follows it on the same rows are one row
/// stage.
#[test]
fn elementwise_chains_are_one_stage() {
    let src = "kernel k(%x: f16[64, 32], %s: f32[32]) -> (out0: f16[64, 32]) {
  %0 = cast %x : f32[64, 32]
  %1 = mul %0, %s : f32[64, 32]
  %2 = sigmoid %1 : f32[64, 32]
  %3 = mul %1, %2 : f32[64, 32]
  %4 = cast %3 : f16[64, 32]
  return %4
}
";
    let m = parse_module(src).unwrap();
    assert_eq!(HostKernel::compile(&m.kernels[0]).unwrap().stages(), 1);
    let src = "kernel k(%x: f32[8, 16]) -> (out0: f32[8, 16]) {
  %0 = max %x axes=[1] : f32[8]
  %1 = reshape %0 : f32[8, 1]
  %2 = sub %x, %1 : f32[8, 16]
  %3 = exp %2 : f32[8, 16]
  return %3
}
";
    let m = parse_module(src).unwrap();
    assert_eq!(HostKernel::compile(&m.kernels[0]).unwrap().stages(), 1);
    // A reduction over the first axis is not row-local to its consumer.
    let src = "kernel k(%x: f32[8, 16]) -> (out0: f32[8, 16]) {
  %0 = max %x axes=[0] : f32[16]
  %1 = sub %x, %0 : f32[8, 16]
  return %1
}
";
    let m = parse_module(src).unwrap();
    assert_eq!(HostKernel::compile(&m.kernels[0]).unwrap().stages(), 2);
}

/// The same bits on one thread as on several, whatever the split.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let src = "kernel k(%a: f32[37, 19], %b: f32[19, 23], %c: f16[37, 23]) -> (out0: f32[37, 23], out1: f32[37]) {
  %0 = matmul %a, %b : f32[37, 23]
  %1 = cast %c : f32[37, 23]
  %2 = mul %0, %1 : f32[37, 23]
  %3 = exp %2 : f32[37, 23]
  %4 = sum %3 axes=[1] : f32[37]
  return %2, %4
}
";
    let m = parse_module(src).unwrap();
    let k = &m.kernels[0];
    let mut x = 0x1234_5678u64;
    let mut draw = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f64 / 1000.0 - 1.0
            })
            .collect()
    };
    let inputs = [
        Tensor::from_f64(DType::F32, vec![37, 19], draw(37 * 19)),
        Tensor::from_f64(DType::F32, vec![19, 23], draw(19 * 23)),
        Tensor::from_f64(DType::F16, vec![37, 23], draw(37 * 23)),
    ];
    let host = HostKernel::compile(k).unwrap();
    let one = host.run(&inputs, Some(1)).unwrap();
    for t in [2, 3, 7] {
        assert_eq!(host.run(&inputs, Some(t)).unwrap(), one, "{t} threads");
    }
    let want = interp::run(k, &inputs).unwrap();
    for (o, (g, w)) in k.outputs.iter().zip(one.iter().zip(&want)) {
        let c = compare(g, w, Rule::for_value(k, o.value));
        assert!(c.ok(), "{}: {c:?}", o.name);
    }
}
