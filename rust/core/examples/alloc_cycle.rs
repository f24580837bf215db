//! Runs allocation cycles on the benchmark's 4-level hub, for profilers:
//! `cargo run --release --example alloc_cycle -- CONNECTORS CYCLES`
//! (e.g. under `valgrind --tool=callgrind` for stable instruction counts).

use hubgate_core::alloc::{
    Allocation, Allocator, ConnectorSpec, CycleInput, NodeSpec, PhaseMap, Settings, Topology,
};

/// A small deterministic generator (xorshift64*), uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() * n as f64) as usize
    }
}

fn node(parent: Option<usize>, phase: f64, power: f64) -> NodeSpec {
    NodeSpec {
        parent,
        phase_cap_a: [phase; 3],
        power_cap_w: power,
        unbalance_cap_a: f64::INFINITY,
    }
}

/// The same shape as `hub` in `python/hubgate/benchmarking/hub_site.py` (the benchmark hub).
fn hub(connectors: usize, rng: &mut Rng) -> (Topology, Vec<f64>, Vec<f64>, Vec<u8>, f64) {
    let c = connectors as f64;
    let chargers = connectors.div_ceil(2);
    let feeders = (chargers / 10).max(1);
    let transformers = (feeders / 10).max(1);
    let mut nodes = vec![node(None, 9.0 * c, 230.0 * 3.0 * 9.0 * c)];
    let t = transformers as f64;
    for _ in 0..transformers {
        nodes.push(node(Some(0), 12.0 * c / t, 230.0 * 3.0 * 7.0 * c / t));
    }
    for f in 0..feeders {
        nodes.push(node(Some(1 + f % transformers), 250.0, f64::INFINITY));
    }
    let first_charger = nodes.len();
    for ch in 0..chargers {
        nodes.push(node(
            Some(1 + transformers + ch % feeders),
            48.0,
            f64::INFINITY,
        ));
    }
    let specs = (0..connectors)
        .map(|i| {
            let phases = if rng.next() < 0.6 {
                PhaseMap::Three
            } else {
                let p = rng.below(3) as u8;
                [
                    PhaseMap::Single(p),
                    PhaseMap::Single(p),
                    PhaseMap::Switchable(p),
                ][rng.below(3)]
            };
            ConnectorSpec {
                node: first_charger + i / 2,
                phases,
                min_a: 6.0,
                max_a: [16.0, 32.0][rng.below(2)],
                step_a: [0.1, 1.0][rng.below(2)],
                weight: 1.0,
                priority: [0, 0, 1, 2][rng.below(4)],
            }
        })
        .collect();
    let mut base = vec![0.0; 3 * nodes.len()];
    for b in &mut base[3..3 * (1 + transformers)] {
        *b = 20.0 * rng.next();
    }
    let ev = (0..connectors)
        .map(|_| [f64::INFINITY, f64::INFINITY, f64::INFINITY, 12.0][rng.below(4)])
        .collect();
    let wanting = (0..connectors)
        .map(|_| u8::from(rng.next() < 0.9))
        .collect();
    let topo = Topology::new(nodes, specs, Settings::default()).expect("valid hub");
    (topo, base, ev, wanting, 230.0 * 3.0 * 6.5 * c)
}

/// Folds every bit of one cycle's output into `digest` (FNV-1a), so that two
/// builds can be compared for identical behaviour.
fn fingerprint(mut digest: u64, out: &Allocation) -> u64 {
    let floats = [&out.setpoint_a, &out.target_a, &out.fair_a];
    let words = floats
        .into_iter()
        .flat_map(|column| column.iter().map(|v| v.to_bits()))
        .chain(out.phases.iter().map(|&p| u64::from(p)))
        .chain(out.reason.iter().map(|&r| r as u64))
        .chain(out.binding_node.iter().map(|&n| n as u64))
        .chain(out.binding_phase.iter().map(|&p| p as u64));
    for word in words {
        digest = (digest ^ word).wrapping_mul(0x0100_0000_01B3);
    }
    digest
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let connectors = args.next().and_then(Result::ok).unwrap_or(1_000);
    let cycles = args.next().and_then(Result::ok).unwrap_or(100);
    let (topo, base, ev, wanting, gop) = hub(connectors, &mut Rng(0x9E37_79B9_7F4A_7C15));
    let pv = vec![0; connectors];
    let mut allocator = Allocator::new(topo);
    let mut out = Allocation::default();
    let mut digest = 0xCBF2_9CE4_8422_2325u64;
    for cycle in 0..cycles {
        let input = CycleInput {
            now: 1.0 + cycle as f64,
            base_load_a: &base,
            ev_max_a: &ev,
            wanting: &wanting,
            pv_mode: &pv,
            grid_operator_w: gop,
            peak_w: f64::INFINITY,
            pv_budget_w: f64::INFINITY,
            floor_a: &[],
            laxity_s: &[],
        };
        allocator.allocate(&input, &mut out).expect("valid input");
        digest = fingerprint(digest, &out);
    }
    println!("{connectors} connectors, {cycles} cycles, output digest {digest:016x}");
}
