//! The cold path as AWS runs it (issue 26): per function and phase, the sequential network
//! levels (from the forwarder's arrival and answer times), the connections opened, the
//! requests whose answer is unused, and CPU (`schedstat`); beside them a *modelled* AWS figure:
//! the recorded trace replayed with the latency table below, and the invocation's CPU at
//! 128 MB's share of a vCPU. `--json`: one line per function with those fields.

use super::*;

/// The latency table the model replays the trace with, in milliseconds: an assumption for a
/// function and the service in the same region, per operation (p50), not a measurement.
/// DynamoDB states single-digit milliseconds; the other services' figures are typical of
/// in-region control-plane calls. BENCHMARKS.md prints it next to every modelled number.
pub(crate) const LATENCY_MS: &[(&str, f64)] = &[
    ("DynamoDB.GetItem", 3.0),
    ("DynamoDB.Query", 4.0),
    ("DynamoDB.PutItem", 5.0),
    ("DynamoDB.UpdateItem", 5.0),
    ("DynamoDB.DeleteItem", 5.0),
    ("DynamoDB.TransactWriteItems", 10.0),
    ("SNS.Publish", 20.0),
    ("SNS.GetSMSAttributes", 10.0),
    ("SNS.CreatePlatformEndpoint", 20.0),
    ("SNS.SetEndpointAttributes", 15.0),
    ("SNS.DeleteEndpoint", 15.0),
    ("SecretsManager.GetSecretValue", 10.0),
    ("SecretsManager.BatchGetSecretValue", 12.0),
    ("KMS.Sign", 8.0),
    ("KMS.GetPublicKey", 6.0),
];
/// An operation not in the table.
const OTHER_MS: f64 = 10.0;
/// A new connection: TCP and the TLS 1.3 handshake, two round trips in the region (its CPU
/// is in the measured CPU).
pub(crate) const CONNECT_MS: f64 = 2.0;
/// The memory size the model runs invocations at (init runs at full CPU in Lambda).
pub(crate) const MODEL_MB: f64 = 128.0;

fn latency_ms(operation: &str) -> f64 {
    LATENCY_MS
        .iter()
        .find(|(op, _)| *op == operation)
        .map_or(OTHER_MS, |(_, ms)| *ms)
}

/// One phase of one process, measured and modelled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Phase {
    pub(crate) levels: usize,
    pub(crate) connections: usize,
    pub(crate) requests: usize,
    pub(crate) unused: usize,
    pub(crate) cpu: Duration,
    /// Network levels' modelled time: each level as long as its slowest request, plus the
    /// connections opened.
    pub(crate) network_ms: f64,
}

/// Requests whose answer the function does not use: SNS's `GetSMSAttributes`, which opens
/// SNS's connection at init, is read only by the functions that send SMS.
fn unused(function: &str, operation: &str) -> bool {
    operation == "SNS.GetSMSAttributes"
        && !matches!(
            binary_of(function),
            "enrol-sms-otp" | "step-up-sms" | "payment-sms"
        )
}

pub(crate) fn phase(
    function: &str,
    (exchanges, connections): &(Vec<Exchange>, usize),
    cpu: Duration,
) -> Phase {
    let levels = levels(exchanges);
    Phase {
        levels: levels.len(),
        connections: *connections,
        requests: exchanges.len(),
        unused: exchanges
            .iter()
            .filter(|e| unused(function, &e.operation))
            .count(),
        cpu,
        network_ms: levels
            .iter()
            .map(|level| {
                level
                    .iter()
                    .map(|e| latency_ms(&e.operation))
                    .fold(0.0, f64::max)
            })
            .sum::<f64>()
            + *connections as f64 * CONNECT_MS,
    }
}

impl Phase {
    /// The modelled time at `MODEL_MB` (an invocation's CPU at that share of a vCPU).
    pub(crate) fn modelled_invocation_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 * FULL_VCPU_MB / MODEL_MB + self.network_ms
    }

    /// Init's modelled time (Lambda runs init at full CPU).
    pub(crate) fn modelled_init_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 + self.network_ms
    }
}

/// The median of paired differences in seconds, in milliseconds (0 without any).
fn median_ms(differences: impl Iterator<Item = f64>) -> f64 {
    let mut differences: Vec<f64> = differences.collect();
    differences.sort_by(f64::total_cmp);
    differences
        .get(differences.len() / 2)
        .map_or(0.0, |s| s * 1e3)
}

/// A function's phases over its runs: the median run of each.
pub(crate) struct ColdPath {
    pub(crate) init: Phase,
    pub(crate) first: Phase,
    pub(crate) warm: Phase,
}

fn median_phase(mut phases: Vec<Phase>) -> Phase {
    // The run whose modelled time is the median (levels, connections and CPU of one run).
    phases.sort_by(|a, b| {
        (a.network_ms + a.cpu.as_secs_f64() * 1e3)
            .total_cmp(&(b.network_ms + b.cpu.as_secs_f64() * 1e3))
    });
    phases.get(phases.len() / 2).cloned().unwrap_or_default()
}

pub(crate) fn cold_path(function: &str, runs: &[Run]) -> ColdPath {
    ColdPath {
        init: median_phase(
            runs.iter()
                .map(|r| phase(function, &r.init_trace, r.init_cpu))
                .collect(),
        ),
        first: median_phase(
            runs.iter()
                .map(|r| phase(function, &r.first_trace, r.first_cpu))
                .collect(),
        ),
        warm: median_phase(
            runs.iter()
                .flat_map(|r| {
                    // Each warm invocation's trace; the run's warm CPU is already a median.
                    r.warm_traces
                        .iter()
                        .map(|t| phase(function, t, r.warm_cpu))
                        .collect::<Vec<_>>()
                })
                .collect(),
        ),
    }
}

/// The table, and with `--json` a line per function.
pub(crate) fn print_cold_path(functions: &[(&str, &str)], rounds: &[Vec<Run>], json: bool) {
    let paths: Vec<(&str, ColdPath)> = functions
        .iter()
        .zip(rounds)
        .map(|((function, _), runs)| (*function, cold_path(function, runs)))
        .collect();
    let f1 = paths
        .iter()
        .find(|(f, _)| *f == "dynamodb-floor")
        .map(|(_, p)| p.init.cpu);
    // Init CPU over F1's, paired by round as the wall ratio is: the median over rounds of
    // each function's init CPU minus F1's in the same round, so that the machine's drift
    // between one function's runs and F1's falls on both.
    let f1_runs = functions
        .iter()
        .zip(rounds)
        .find(|((f, _), _)| *f == "dynamodb-floor")
        .map(|(_, runs)| runs);
    let over_f1 = |runs: &[Run]| {
        f1_runs.map(|f1_runs| {
            median_ms(
                runs.iter()
                    .zip(f1_runs)
                    .map(|(run, f1)| run.init_cpu.as_secs_f64() - f1.init_cpu.as_secs_f64()),
            )
        })
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!();
    println!("| cold path (median run) | init: levels / connections / requests / CPU | first request: levels / connections / CPU | warm: levels / connections / CPU | unused requests | init CPU − F1 (median of same-round differences) | first CPU − warm (median over processes) | modelled at 128 MB: init / first / warm | first ÷ warm (modelled) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((function, path), runs) in paths.iter().zip(rounds) {
        let ColdPath { init, first, warm } = path;
        let init_over_f1 = over_f1(runs);
        let over_f1 = init_over_f1.map_or(String::from("-"), |d| format!("{d:+.2} ms"));
        // The first request's CPU over a warm one's of the same process, the median over runs.
        let first_over_warm = median_ms(
            runs.iter()
                .map(|r| r.first_cpu.as_secs_f64() - r.warm_cpu.as_secs_f64()),
        );
        let (modelled_init, modelled_first, modelled_warm) = (
            init.modelled_init_ms(),
            first.modelled_invocation_ms(),
            warm.modelled_invocation_ms(),
        );
        println!(
            "| {function} | {} / {} / {} / {:.2} ms | {} / {} / {:.2} ms | {} / {} / {:.2} ms | {} | {over_f1} | {:+.2} ms | {modelled_init:.1} / {modelled_first:.1} / {modelled_warm:.1} ms | {:.2} |",
            init.levels,
            init.connections,
            init.requests,
            ms(init.cpu),
            first.levels,
            first.connections,
            ms(first.cpu),
            warm.levels,
            warm.connections,
            ms(warm.cpu),
            init.unused + first.unused,
            first_over_warm,
            modelled_first / modelled_warm.max(1e-9),
        );
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "function": function,
                    "init_levels": init.levels,
                    "first_levels": first.levels,
                    "warm_levels": warm.levels,
                    "init_connections": init.connections,
                    "first_connections": first.connections,
                    "unused_requests": init.unused + first.unused,
                    "init_cpu_ms": ms(init.cpu),
                    "first_cpu_ms": ms(first.cpu),
                    "warm_cpu_ms": ms(warm.cpu),
                    "f1_init_cpu_ms": f1.map(ms),
                    "init_cpu_over_f1_ms": init_over_f1,
                    "first_cpu_over_warm_ms": first_over_warm,
                    "modelled_init_ms": modelled_init,
                    "modelled_first_ms_128": modelled_first,
                    "modelled_warm_ms_128": modelled_warm,
                })
            );
        }
    }
    println!();
    println!(
        "The model: each network level as long as its slowest request, a new connection {CONNECT_MS} ms, an invocation's CPU × {:.1} (128 MB's share of a vCPU; init at full CPU). Latencies assumed (ms, in-region p50, not measured): {}; any other {OTHER_MS}.",
        FULL_VCPU_MB / MODEL_MB,
        LATENCY_MS
            .iter()
            .map(|(op, ms)| format!("{op} {ms}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
