//! Kernel inputs on the command line: `--dim`, `--input`, `--random-inputs`.
//!
//! Binding follows cli.md: the shapes of the given `.npy` files bind the
//! kernel's symbolic dims, `--dim N=V` binds them too, and any disagreement
//! is an error naming both sides (E0501). Random inputs are reproducible:
//! parameter `i` draws from SplitMix64 seeded with `seed ^ (i + 1) ·
//! 0x9E3779B97F4A7C15`; floats are uniform in [-1, 1) (rounded to the dtype,
//! then kept below 1), integers uniform in [-8, 8).

use crate::npy;
use std::path::{Path, PathBuf};
use tessera_frontend::ast::{DimExpr, KernelDef};
use tessera_frontend::lower::signature_dims;
use tessera_ir::{Code, DType, Diagnostic, DimEnv, Shape, Tensor, TensorType};

/// Parses `--dim N=V` arguments.
pub fn parse_dims(args: &[String], def: &KernelDef) -> Result<DimEnv, Vec<Diagnostic>> {
    let known: Vec<String> = signature_dims(def).into_iter().map(|(n, _)| n).collect();
    let mut env = DimEnv::new();
    let mut diags = Vec::new();
    for a in args {
        let Some((name, value)) = a.split_once('=') else {
            diags.push(
                Diagnostic::new(Code::E0606, format!("malformed `--dim {a}`"))
                    .help("write `--dim NAME=VALUE`, e.g. `--dim M=1024`"),
            );
            continue;
        };
        let name = name.trim();
        let value = match value.trim().parse::<u64>() {
            Ok(v) if v > 0 => v,
            _ => {
                diags.push(
                    Diagnostic::new(
                        Code::E0606,
                        format!("`--dim {a}`: `{}` is not a positive integer", value.trim()),
                    )
                    .help("dims are positive integers"),
                );
                continue;
            }
        };
        if !known.iter().any(|k| k == name) {
            let list = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            diags.push(
                Diagnostic::new(
                    Code::E0606,
                    format!("kernel `{}` has no symbolic dim `{name}`", def.name.name),
                )
                .note(format!("its symbolic dims: {list}")),
            );
            continue;
        }
        if let Some(&prev) = env.get(name)
            && prev != value
        {
            diags.push(Diagnostic::new(
                Code::E0501,
                format!("`--dim {name}` is given twice, as {prev} and as {value}"),
            ));
            continue;
        }
        env.insert(name.to_string(), value);
    }
    if diags.is_empty() {
        Ok(env)
    } else {
        Err(diags)
    }
}

/// Parses `--input NAME=PATH` arguments against the kernel's parameters.
pub fn parse_inputs(
    args: &[String],
    def: &KernelDef,
) -> Result<Vec<(usize, PathBuf)>, Vec<Diagnostic>> {
    let mut out: Vec<(usize, PathBuf)> = Vec::new();
    let mut diags = Vec::new();
    for a in args {
        let Some((name, path)) = a.split_once('=') else {
            diags.push(
                Diagnostic::new(Code::E0606, format!("malformed `--input {a}`"))
                    .help("write `--input NAME=PATH.npy`"),
            );
            continue;
        };
        let Some(i) = def.params.iter().position(|p| p.name.name == name) else {
            let names: Vec<&str> = def.params.iter().map(|p| p.name.name.as_str()).collect();
            diags.push(
                Diagnostic::new(
                    Code::E0605,
                    format!("kernel `{}` has no parameter `{name}`", def.name.name),
                )
                .note(format!("its parameters: {}", names.join(", "))),
            );
            continue;
        };
        if out.iter().any(|(j, _)| *j == i) {
            diags.push(Diagnostic::new(
                Code::E0605,
                format!("input `{name}` is given twice"),
            ));
            continue;
        }
        out.push((i, PathBuf::from(path)));
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// Reads an input file as a tensor of the parameter's dtype (any shape).
pub fn read_input(path: &Path, param: &str, dtype: DType) -> Result<Tensor, Diagnostic> {
    let what = format!("input `{param}` ({})", path.display());
    // Longer than any header's size can state: malformed, as its header
    // would be (docs/cli.md's limits); unreadable: a file error.
    let bytes =
        crate::files::read_raw(path, crate::files::MAX_NPY_BYTES, ".npy input").map_err(|e| {
            let code = match e {
                crate::files::ReadFailure::TooLarge(_) => Code::E0601,
                crate::files::ReadFailure::Unreadable(_) => Code::E0600,
            };
            Diagnostic::new(code, format!("{what}: {}", e.message()))
        })?;
    let arr = npy::parse(&bytes).map_err(|e| {
        Diagnostic::new(
            Code::E0601,
            format!(
                "{what} is not a valid .npy file: {} (at byte {})",
                e.message, e.offset
            ),
        )
    })?;
    crate::files::host_tensor(&what, &TensorType::new(dtype, Shape::fixed(&arr.shape)))?;
    npy::to_tensor(&arr, dtype, &what)
}

/// Checks an input's shape against its parameter and binds the parameter's
/// symbolic dims into `env`. `origin` records which input or `--dim` bound
/// each dim, for messages.
pub fn bind_shape(
    def: &KernelDef,
    param: usize,
    shape: &[usize],
    source_name: &str,
    env: &mut DimEnv,
    origin: &mut Vec<(String, String)>,
) -> Result<(), Diagnostic> {
    let p = &def.params[param];
    let dims = &p.ty.dims;
    // As numpy prints a shape: `()`, `(4,)`, `(4, 8)`.
    let shape_text = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if shape.len() != dims.len() {
        return Err(Diagnostic::new(
            Code::E0603,
            format!(
                "{source_name} has shape {shape_text}, but parameter `{}` is {}",
                p.name.name,
                p.ty.text()
            ),
        )
        .primary(p.ty.span, format!("rank {} expected", dims.len())));
    }
    for (axis, (d, &n)) in dims.iter().zip(shape).enumerate() {
        let n = n as u64;
        match d {
            DimExpr::Int(want, span) => {
                if *want != n {
                    return Err(Diagnostic::new(
                        Code::E0603,
                        format!(
                            "{source_name} has shape {shape_text}, but parameter `{}` is {}",
                            p.name.name,
                            p.ty.text()
                        ),
                    )
                    .primary(*span, format!("expects {want}, the input has {n}")));
                }
            }
            DimExpr::Sym(s) if n == 0 => {
                return Err(Diagnostic::new(
                    Code::E0603,
                    format!(
                        "{source_name} has shape {shape_text}: a tensor's dims are positive, so `{}` cannot be 0",
                        s.name
                    ),
                )
                .primary(s.span, format!("`{}` would be 0", s.name)));
            }
            DimExpr::Sym(s) => match env.get(&s.name) {
                Some(&prev) if prev != n => {
                    let from = origin
                        .iter()
                        .find(|(k, _)| *k == s.name)
                        .map_or_else(|| "an earlier binding".to_string(), |(_, o)| o.clone());
                    // Both from this input (`x: f32[N, N]` given a 4 × 5
                    // array): the axes tell them apart.
                    let earlier_axis = dims[..axis]
                        .iter()
                        .position(|e| matches!(e, DimExpr::Sym(t) if t.name == s.name));
                    // The label names the two values in the message's order.
                    let (message, first, second) = match earlier_axis {
                        Some(j) if shape[j] as u64 == prev => (
                            format!(
                                "dim `{}` is {prev} in axis {j} but {n} in axis {axis} of {source_name}",
                                s.name
                            ),
                            prev,
                            n,
                        ),
                        _ => (
                            format!(
                                "dim `{}` is {n} in {source_name} but {prev} in {from}",
                                s.name
                            ),
                            n,
                            prev,
                        ),
                    };
                    return Err(Diagnostic::new(Code::E0501, message).primary(
                        s.span,
                        format!("`{}` cannot be both {first} and {second}", s.name),
                    ));
                }
                Some(_) => {}
                None => {
                    env.insert(s.name.clone(), n);
                    origin.push((s.name.clone(), source_name.to_string()));
                }
            },
        }
    }
    Ok(())
}

/// SplitMix64: a small, well-known generator with a fixed output stream
/// (the state is the seed).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A reproducible random tensor for parameter number `index`.
pub fn random_tensor(dtype: DType, shape: Vec<usize>, seed: u64, index: usize) -> Tensor {
    let mut rng = SplitMix64(seed ^ ((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let n = Tensor::count(&shape).unwrap_or(0);
    let values: Vec<f64> = (0..n)
        .map(|_| {
            let r = rng.next_u64();
            if dtype.is_float() {
                let u = (r >> 11) as f64 / (1u64 << 53) as f64;
                let x = dtype.round_float(2.0 * u - 1.0);
                if x >= 1.0 {
                    largest_below_one(dtype)
                } else {
                    x
                }
            } else {
                (r % 16) as f64 - 8.0
            }
        })
        .collect();
    Tensor::from_f64(dtype, shape, values)
}

fn largest_below_one(dtype: DType) -> f64 {
    let bits = match dtype {
        DType::F16 => 11,
        DType::BF16 => 8,
        _ => 24,
    };
    1.0 - 2f64.powi(-bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_inputs_are_reproducible_and_in_range() {
        let a = random_tensor(DType::F16, vec![1000], 7, 0);
        assert_eq!(a, random_tensor(DType::F16, vec![1000], 7, 0));
        assert_ne!(a, random_tensor(DType::F16, vec![1000], 7, 1));
        assert!((0..a.len()).all(|i| (-1.0..1.0).contains(&a.get_f64(i))));
        let b = random_tensor(DType::I8, vec![1000], 7, 0);
        assert!((0..b.len()).all(|i| (-8.0..8.0).contains(&b.get_f64(i))));
    }

    #[test]
    fn splitmix_matches_its_reference_stream() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference code).
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
