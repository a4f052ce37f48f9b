//! Ahead-of-time host code as a C program uses it: `tessera compile
//! --target host --emit obj,header`, a C program that includes the header,
//! links the object with `cc` and runs it on a run case's fixture inputs;
//! its results are compared with the numpy fixtures under the spec's rule.
//! The same program calls the kernel with a wrong dim and checks that it
//! returns `TESSERA_BAD_DIMS` and writes nothing.

use std::fmt::Write as _;
use std::process::Command;
use tessera_compiler::{driver, inputs};
use tessera_ir::compare::{Rule, compare};
use tessera_ir::{DimEnv, Tensor};
use tessera_testsuite::{crate_dir, directives, load, run_cli};

/// The C program: read each input, call the kernel with a wrong first dim
/// (expecting TESSERA_BAD_DIMS and untouched results), then with the right
/// dims, and write each result.
fn main_c(header: &str, symbol: &str, ins: &[usize], outs: &[usize], dims: &[u64]) -> String {
    let mut c = format!(
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"{header}\"\n\n"
    );
    c.push_str(
        "static void *slurp(const char *path, size_t n) {\n  void *p = malloc(n ? n : 1);\n  FILE *f = fopen(path, \"rb\");\n  if (!f || fread(p, 1, n, f) != n) { fprintf(stderr, \"cannot read %s\\n\", path); exit(10); }\n  fclose(f);\n  return p;\n}\n\n",
    );
    c.push_str("int main(void) {\n");
    for (i, n) in ins.iter().enumerate() {
        let _ = writeln!(c, "  void *in{i} = slurp(\"in{i}.bin\", {n});");
    }
    for (j, n) in outs.iter().enumerate() {
        let _ = writeln!(
            c,
            "  unsigned char *out{j} = malloc({m}); memset(out{j}, 0xA5, {m});",
            m = n.max(&1)
        );
    }
    let args = |wrong: bool| -> String {
        let mut a: Vec<String> = (0..ins.len()).map(|i| format!("in{i}")).collect();
        a.extend((0..outs.len()).map(|j| format!("(void *)out{j}")));
        a.extend(
            dims.iter()
                .enumerate()
                .map(|(i, d)| format!("{}", if wrong && i == 0 { d + 1 } else { *d })),
        );
        a.join(", ")
    };
    if !dims.is_empty() {
        let _ = writeln!(
            c,
            "  if ({symbol}({}) != TESSERA_BAD_DIMS) return 11;",
            args(true)
        );
        for (j, n) in outs.iter().enumerate() {
            let _ = writeln!(
                c,
                "  for (size_t i = 0; i < {n}; i++) if (out{j}[i] != 0xA5) return 12;"
            );
        }
    }
    let _ = writeln!(c, "  int32_t st = {symbol}({});", args(false));
    c.push_str("  if (st != TESSERA_OK) { fprintf(stderr, \"status %d\\n\", st); return 13; }\n");
    for (j, n) in outs.iter().enumerate() {
        let _ = writeln!(
            c,
            "  FILE *f{j} = fopen(\"out{j}.bin\", \"wb\"); if (!f{j} || fwrite(out{j}, 1, {n}, f{j}) != {n}) return 14; fclose(f{j});"
        );
    }
    c.push_str("  return 0;\n}\n");
    c
}

fn aot_case(case: &str) -> Result<(), String> {
    let path = crate_dir().join("cases/run").join(format!("{case}.tsr"));
    let src = load(&path);
    let dirs = directives(&src.text)?;
    let file = driver::parse_and_check(&src).map_err(|f| format!("{f:?}"))?;
    let def = driver::select_kernel(&file, dirs.kernel.as_deref()).map_err(|f| format!("{f:?}"))?;
    let data = path.with_extension("");
    let mut env: DimEnv = dirs.dims.clone();
    let mut origin = Vec::new();
    let mut given = Vec::new();
    for (i, p) in def.params.iter().enumerate() {
        let f = data.join("inputs").join(format!("{}.npy", p.name.name));
        let t = inputs::read_input(&f, &p.name.name, p.ty.dtype).map_err(|d| d.to_string())?;
        inputs::bind_shape(def, i, &t.shape, &p.name.name, &mut env, &mut origin)
            .map_err(|d| d.to_string())?;
        given.push(t);
    }
    let kernel = driver::lower(&file, &def.name.name, &env, &src).map_err(|f| format!("{f:?}"))?;
    let dir = std::env::temp_dir().join(format!("tessera-aot-{case}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut args: Vec<String> = [
        "compile",
        path.to_str().unwrap_or_default(),
        "-k",
        &def.name.name,
        "--target",
        "host",
        "--emit",
        "obj,header",
        "-o",
        dir.to_str().unwrap_or_default(),
    ]
    .map(String::from)
    .to_vec();
    for (n, v) in &env {
        args.extend(["--dim".into(), format!("{n}={v}")]);
    }
    let (code, _, err) = run_cli(&args);
    if code != 0 {
        return Err(format!("compile exited {code}: {err}"));
    }
    for (i, t) in given.iter().enumerate() {
        std::fs::write(dir.join(format!("in{i}.bin")), t.to_le_bytes())
            .map_err(|e| e.to_string())?;
    }
    let size = |t: &tessera_ir::TensorType| {
        t.shape.num_elements().unwrap_or(0) as usize * t.dtype.size_bytes()
    };
    let ins: Vec<usize> = kernel.params.iter().map(|p| size(&p.ty)).collect();
    let outs: Vec<usize> = kernel
        .outputs
        .iter()
        .map(|o| size(kernel.ty(o.value)))
        .collect();
    let dims: Vec<u64> = env.values().copied().collect();
    let name = &def.name.name;
    let c = main_c(
        &format!("{name}.h"),
        &format!("tessera_{name}"),
        &ins,
        &outs,
        &dims,
    );
    std::fs::write(dir.join("main.c"), c).map_err(|e| e.to_string())?;
    let cc = Command::new("cc")
        .current_dir(&dir)
        .args(["-std=c99", "-Wall", "-Werror", "-O1", "main.c"])
        .arg(format!("{name}.o"))
        .args(["-lm", "-o", "main"])
        .output()
        .map_err(|e| format!("cannot run `cc` (a C compiler is needed): {e}"))?;
    if !cc.status.success() {
        return Err(format!(
            "cc failed:\n{}",
            String::from_utf8_lossy(&cc.stderr)
        ));
    }
    let run = Command::new(dir.join("main"))
        .current_dir(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !run.status.success() {
        return Err(format!(
            "the C program exited {:?}: {}",
            run.status.code(),
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    for (j, o) in kernel.outputs.iter().enumerate() {
        let ty = kernel.ty(o.value);
        let bytes = std::fs::read(dir.join(format!("out{j}.bin"))).map_err(|e| e.to_string())?;
        let got = Tensor::from_le_bytes(ty.dtype, ty.shape.as_usize().unwrap_or_default(), &bytes)
            .map_err(|e| format!("{e:?}"))?;
        let f = data.join("expected").join(format!("{}.npy", o.name));
        let want = inputs::read_input(&f, &o.name, ty.dtype).map_err(|d| d.to_string())?;
        let cmp = compare(&got, &want, Rule::for_value(&kernel, o.value));
        if !cmp.ok() {
            return Err(format!(
                "output `{}`: {} mismatches, first {:?}",
                o.name, cmp.mismatches, cmp.first_mismatch
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn c_programs_link_host_objects_and_match_the_fixtures() {
    let failures: Vec<String> = [
        "spec_mlp",
        "softmax_f16",
        "multi_output_elementwise",
        "spec_layer_stats",
        "concat_i8_symbolic",
        "awkward_reduce_ints",
        "matmul_awkward_batch_transposed",
    ]
    .iter()
    .filter_map(|c| aot_case(c).err().map(|e| format!("{c}: {e}")))
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Headers whose kernels' names clash in C compile: a result named like a
/// parameter (the language allows it), an unnamed result `out0` beside a
/// parameter `out0`, a parameter named like a dim beside one named like
/// the dim's renaming, a C keyword beside its renaming, and names that the
/// standard headers or the status codes define as macros — each parameter
/// gets a name of its own, with `<stddef.h>`, `<errno.h>` and `<stdio.h>`
/// included first.
#[test]
fn headers_of_clashing_names_compile() {
    let kernels = [
        (
            "same",
            "kernel same(x: f32[N]) -> (x: f32[N]) { return x * 2.0; }",
        ),
        (
            "unnamed",
            "kernel unnamed(x: f32[N], out0: f32[N]) -> f32[N] { return x * out0; }",
        ),
        (
            "dims",
            "kernel dims(N: f32[N], N_: f32[N]) -> f32[N] { return N * N_; }",
        ),
        (
            "keyword",
            "kernel keyword(int: f32[N], int_: f32[N]) -> f32[N] { return int * int_; }",
        ),
        (
            "macros",
            "kernel macros(NULL: f32[N], errno: f32[N], TESSERA_OK: f32[N]) -> (EOF: f32[N]) {\n    return NULL * errno + TESSERA_OK;\n}",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("tessera-aot-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    for (name, text) in kernels {
        let tsr = dir.join(format!("{name}.tsr"));
        std::fs::write(&tsr, format!("{text}\n")).expect("writes");
        let out = dir.join(name);
        let args = [
            "compile",
            tsr.to_str().unwrap_or_default(),
            "--target",
            "host",
            "--dim",
            "N=4",
            "--emit",
            "obj,header",
            "-o",
            out.to_str().unwrap_or_default(),
        ]
        .map(String::from);
        let (code, _, err) = run_cli(&args);
        assert_eq!(code, 0, "{name}: {err}");
        let c = out.join("use.c");
        std::fs::write(
            &c,
            format!(
                "#include <stddef.h>\n#include <errno.h>\n#include <stdio.h>\n#include \"{name}.h\"\nint main(void) {{ return 0; }}\n"
            ),
        )
        .expect("writes");
        let cc = Command::new("cc")
            .args(["-fsyntax-only", "-Wall", "-Werror"])
            .arg(&c)
            .output()
            .expect("a C compiler");
        let header = std::fs::read_to_string(out.join(format!("{name}.h"))).unwrap_or_default();
        assert!(
            cc.status.success(),
            "{name}: {}\n{header}",
            String::from_utf8_lossy(&cc.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
