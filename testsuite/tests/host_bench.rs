//! `tessera bench --target host`: the figures it derives from the kernel are
//! exact (flops, bytes), and its timings are ordered. The times themselves
//! vary between runs and are not asserted.

use tessera_testsuite::{crate_dir, run_cli};

#[test]
fn host_bench_reports_exact_work_and_ordered_times() {
    let file = crate_dir().join("cases/run/spec_mlp.tsr");
    let (code, out, err) = run_cli(&[
        "bench",
        file.to_str().unwrap_or_default(),
        "--target",
        "host",
        "--threads",
        "1",
        "--json",
        "--dim",
        "M=64",
        "--dim",
        "K=32",
        "--dim",
        "N=48",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["target"], "host");
    assert_eq!(v["threads"], 1);
    let runs = v["runs"].as_u64().unwrap();
    assert!((5..=200).contains(&runs), "{runs} runs");
    let (lo, mid, hi) = (
        v["min_ms"].as_f64().unwrap(),
        v["median_ms"].as_f64().unwrap(),
        v["max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < lo && lo <= mid && mid <= hi, "{lo} {mid} {hi}");
    let flops = v["flops"].as_u64().unwrap();
    let gflops = v["gflops"].as_f64().unwrap();
    assert!((gflops - flops as f64 / (mid * 1e6)).abs() <= 1e-9 * gflops.max(1.0));
    // x[64, 32] @ w[32, 48]: 2 flops per multiply-add.
    assert_eq!(flops, 2 * 64 * 32 * 48);
    // f16 x and w, f32 b, f16 result, each once.
    assert_eq!(v["bytes"], 64 * 32 * 2 + 32 * 48 * 2 + 48 * 4 + 64 * 48 * 2);
}
