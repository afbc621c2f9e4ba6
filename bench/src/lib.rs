//! Nothing here: the micro-benchmarks are in `benches/hot_path.rs` (`cargo bench -p
//! spendgate-bench`), the end-to-end benchmark is `bench/run.sh`.
#![forbid(unsafe_code)]
