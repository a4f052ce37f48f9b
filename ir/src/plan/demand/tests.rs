//! Which body values are half-demanded.

use super::*;

fn inst(op: EwOp, args: &[EwArg], dtype: DType) -> EwInst {
    EwInst {
        op,
        args: args.to_vec(),
        dtype,
    }
}

use EwArg::{Input as I, Inst as T};

/// `cast(gelu(x) * sigmoid(y), f16)`: t0 = sigmoid y, t1 = gelu x,
/// t2 = t1 · t0, t3 = cast t2.
fn gated(product: EwOp, half_out: DType) -> Vec<EwInst> {
    vec![
        inst(EwOp::Unary(UnaryOp::Sigmoid), &[I(1)], DType::F32),
        inst(EwOp::Unary(UnaryOp::Gelu), &[I(0)], DType::F32),
        inst(product, &[T(1), T(0)], DType::F32),
        inst(EwOp::Cast(half_out), &[T(2)], half_out),
    ]
}

#[test]
fn a_gelu_reaching_a_final_half_result_through_a_bounded_product_is_half_demanded() {
    let body = gated(EwOp::Binary(BinaryOp::Mul), DType::F16);
    assert_eq!(body_demand(&body, &[(3, true)]), [false, true, true, true]);
    let body = gated(EwOp::Binary(BinaryOp::Mul), DType::BF16);
    assert!(body_demand(&body, &[(3, true)])[1]);
}

#[test]
fn a_sum_an_f32_result_or_a_result_read_again_demands_f32() {
    // The product replaced by a sum: gelu(x) + sigmoid(y) may cancel (the
    // sum itself is only rounded to f16).
    let body = gated(EwOp::Binary(BinaryOp::Add), DType::F16);
    assert_eq!(body_demand(&body, &[(3, true)]), [false, false, true, true]);
    // The f16 result read by a later stage, or kept in a workspace.
    let body = gated(EwOp::Binary(BinaryOp::Mul), DType::F16);
    assert_eq!(body_demand(&body, &[(3, false)]), [false; 4]);
    // The cast to f32: the result is judged at f32's tolerance.
    let body = gated(EwOp::Binary(BinaryOp::Mul), DType::F32);
    assert_eq!(body_demand(&body, &[(3, true)]), [false; 4]);
    // gelu itself also an f32 result of the stage.
    let body = gated(EwOp::Binary(BinaryOp::Mul), DType::F16);
    assert!(!body_demand(&body, &[(3, true), (1, true)])[1]);
}

#[test]
fn only_products_with_values_in_the_unit_interval_keep_the_demand() {
    // gelu(x) · y, y an input of any size.
    let body = vec![
        inst(EwOp::Unary(UnaryOp::Gelu), &[I(0)], DType::F32),
        inst(EwOp::Binary(BinaryOp::Mul), &[T(0), I(1)], DType::F32),
        inst(EwOp::Cast(DType::F16), &[T(1)], DType::F16),
    ];
    assert_eq!(body_demand(&body, &[(2, true)]), [false, true, true]);
    // gelu(x) · gelu(x).
    let body = vec![
        inst(EwOp::Unary(UnaryOp::Gelu), &[I(0)], DType::F32),
        inst(EwOp::Binary(BinaryOp::Mul), &[T(0), T(0)], DType::F32),
        inst(EwOp::Cast(DType::F16), &[T(1)], DType::F16),
    ];
    assert_eq!(body_demand(&body, &[(2, true)]), [false, true, true]);
    // gelu(x) · tanh(y) and then · erf(z), either operand order.
    let body = vec![
        inst(EwOp::Unary(UnaryOp::Tanh), &[I(1)], DType::F32),
        inst(EwOp::Unary(UnaryOp::Erf), &[I(2)], DType::F32),
        inst(EwOp::Unary(UnaryOp::Gelu), &[I(0)], DType::F32),
        inst(EwOp::Binary(BinaryOp::Mul), &[T(0), T(2)], DType::F32),
        inst(EwOp::Binary(BinaryOp::Mul), &[T(3), T(1)], DType::F32),
        inst(EwOp::Cast(DType::F16), &[T(4)], DType::F16),
    ];
    assert_eq!(
        body_demand(&body, &[(5, true)]),
        [false, false, true, true, true, true]
    );
}

#[test]
fn a_half_result_computed_directly_is_half_demanded_and_an_unused_value_is_not() {
    // gelu of an f16 operand, rounded to f16: the stage's result.
    let body = vec![inst(EwOp::Unary(UnaryOp::Gelu), &[I(0)], DType::F16)];
    assert_eq!(body_demand(&body, &[(0, true)]), [true]);
    assert_eq!(body_demand(&body, &[(0, false)]), [false]);
    // A value nothing uses (not a result either) demands nothing to speak
    // of, and is left exact.
    let body = vec![
        inst(EwOp::Unary(UnaryOp::Gelu), &[I(0)], DType::F32),
        inst(EwOp::Cast(DType::F16), &[I(0)], DType::F16),
    ];
    assert_eq!(body_demand(&body, &[(1, true)]), [false, true]);
}
