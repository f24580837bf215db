//! Property tests of the allocation engine: every invariant of issue 6,
//! checked from the public API only (recomputing every limit by hand).

use hubgate_core::alloc::{
    Allocation, Allocator, ConnectorSpec, CycleInput, NodeSpec, PhaseMap, Reason, Settings,
    Topology, PHASES,
};
use proptest::prelude::*;

const EPS: f64 = 1e-6;
const V: f64 = 230.0;

#[derive(Clone, Debug)]
struct Case {
    nodes: Vec<NodeSpec>,
    connectors: Vec<ConnectorSpec>,
    base: Vec<f64>,
    ev_max: Vec<f64>,
    wanting: Vec<u8>,
    pv: Vec<u8>,
    gop: f64,
    peak: f64,
    pv_budget: f64,
}

impl Case {
    fn input(&self, now: f64) -> CycleInput<'_> {
        CycleInput {
            now,
            base_load_a: &self.base,
            ev_max_a: &self.ev_max,
            wanting: &self.wanting,
            pv_mode: &self.pv,
            grid_operator_w: self.gop,
            peak_w: self.peak,
            pv_budget_w: self.pv_budget,
            floor_a: &[],
            laxity_s: &[],
        }
    }

    fn allocator(&self, settings: Settings) -> Allocator {
        Allocator::new(
            Topology::new(self.nodes.clone(), self.connectors.clone(), settings).unwrap(),
        )
    }
}

fn cap_a() -> impl Strategy<Value = f64> {
    prop_oneof![1 => Just(f64::INFINITY), 3 => (4u32..=40).prop_map(|v| f64::from(v) * 5.0)]
}

fn node(parent: Option<usize>) -> impl Strategy<Value = NodeSpec> {
    (
        [cap_a(), cap_a(), cap_a()],
        prop_oneof![2 => Just(f64::INFINITY), 1 => (5u32..=100).prop_map(|kw| f64::from(kw) * 1000.0)],
        prop_oneof![2 => Just(f64::INFINITY), 1 => (2u32..=30).prop_map(f64::from)],
    )
        .prop_map(move |(phase_cap_a, power_cap_w, unbalance_cap_a)| NodeSpec {
            parent,
            phase_cap_a,
            power_cap_w,
            unbalance_cap_a,
        })
}

fn connector(nodes: usize) -> impl Strategy<Value = ConnectorSpec> {
    (
        0..nodes,
        prop_oneof![
            (0u8..3).prop_map(PhaseMap::Single),
            Just(PhaseMap::Three),
            (0u8..3).prop_map(PhaseMap::Switchable)
        ],
        prop_oneof![Just(6.0), Just(8.0)],
        prop_oneof![Just(16.0), Just(32.0), Just(20.5)],
        prop_oneof![Just(0.1), Just(1.0), Just(0.5)],
        prop_oneof![Just(1.0), Just(2.0), Just(0.5)],
        0u8..3,
    )
        .prop_map(
            |(node, phases, min_a, max_a, step_a, weight, priority)| ConnectorSpec {
                node,
                phases,
                min_a,
                max_a,
                step_a,
                weight,
                priority,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..7)
        .prop_flat_map(|n| {
            let parents: Vec<_> = (1..n).map(|i| 0..i).collect();
            (Just(n), parents)
        })
        .prop_flat_map(|(n, parents)| {
            let mut nodes = vec![node(None).boxed()];
            nodes.extend(parents.into_iter().map(|p| node(Some(p)).boxed()));
            (nodes, prop::collection::vec(connector(n), 0..24), Just(n))
        })
        .prop_flat_map(|(nodes, connectors, n)| {
            let c = connectors.len();
            (
                Just(nodes),
                Just(connectors),
                // Base load is signed: PV and a discharging battery feed back (negative).
                prop::collection::vec((0u32..60).prop_map(|v| f64::from(v) * 0.5 - 10.0), PHASES * n),
                prop::collection::vec(
                    prop_oneof![3 => Just(f64::INFINITY), 1 => (0u32..40).prop_map(f64::from)],
                    c,
                ),
                prop::collection::vec(prop_oneof![4 => Just(1u8), 1 => Just(0u8)], c),
                prop::collection::vec(prop_oneof![4 => Just(0u8), 1 => Just(1u8)], c),
                prop_oneof![3 => Just(f64::INFINITY), 1 => (0u32..60).prop_map(|kw| f64::from(kw) * 1000.0)],
                prop_oneof![3 => Just(f64::INFINITY), 1 => (0u32..60).prop_map(|kw| f64::from(kw) * 1000.0)],
                prop_oneof![2 => Just(f64::INFINITY), 1 => (0u32..30).prop_map(|kw| f64::from(kw) * 1000.0)],
            )
        })
        .prop_map(|(nodes, connectors, base, ev_max, wanting, pv, gop, peak, pv_budget)| Case {
            nodes,
            connectors,
            base,
            ev_max,
            wanting,
            pv,
            gop,
            peak,
            pv_budget,
        })
}

/// Everything one setpoint vector loads, recomputed from scratch.
struct Loads {
    phase: Vec<[f64; 3]>,
    power: Vec<f64>,
    total_w: f64,
    pv_w: f64,
}

fn on_path(case: &Case, mut node: usize, target: usize) -> bool {
    loop {
        if node == target {
            return true;
        }
        match case.nodes[node].parent {
            Some(p) => node = p,
            None => return false,
        }
    }
}

fn draw(c: &ConnectorSpec, phases: u8, amps: f64) -> [f64; 3] {
    match (phases, c.phases) {
        (1, PhaseMap::Single(p) | PhaseMap::Switchable(p)) => {
            let mut d = [0.0; 3];
            d[usize::from(p)] = amps;
            d
        }
        _ => [amps; 3],
    }
}

fn loads(case: &Case, amps: &[f64], phases: &[u8]) -> Loads {
    let n = case.nodes.len();
    let mut out = Loads {
        phase: vec![[0.0; 3]; n],
        power: vec![0.0; n],
        total_w: 0.0,
        pv_w: 0.0,
    };
    for (i, c) in case.connectors.iter().enumerate() {
        let d = draw(c, phases[i], amps[i]);
        let w = (d[0] + d[1] + d[2]) * V;
        for node in 0..n {
            if on_path(case, c.node, node) {
                for (sum, draw) in out.phase[node].iter_mut().zip(d) {
                    *sum += draw;
                }
                out.power[node] += w;
            }
        }
        out.total_w += w;
        if case.pv[i] != 0 {
            out.pv_w += w;
        }
    }
    out
}

fn root(case: &Case) -> usize {
    case.nodes.iter().position(|n| n.parent.is_none()).unwrap()
}

fn root_base_w(case: &Case) -> f64 {
    let r = root(case);
    V * (case.base[3 * r] + case.base[3 * r + 1] + case.base[3 * r + 2])
}

/// Capacity left for connectors in each limit, in the order `limits` lists them.
fn caps(case: &Case) -> Vec<f64> {
    let mut caps = Vec::new();
    for (n, node) in case.nodes.iter().enumerate() {
        for p in 0..3 {
            caps.push(node.phase_cap_a[p] - case.base[3 * n + p]);
        }
        caps.push(
            node.power_cap_w - V * (case.base[3 * n] + case.base[3 * n + 1] + case.base[3 * n + 2]),
        );
    }
    let gop = if case.gop.is_finite() {
        case.gop - root_base_w(case)
    } else {
        f64::INFINITY
    };
    caps.push(gop);
    caps.push(case.peak - root_base_w(case));
    caps.push(case.pv_budget);
    caps
}

fn limits(l: &Loads) -> Vec<f64> {
    let mut v = Vec::new();
    for (phase, power) in l.phase.iter().zip(&l.power) {
        v.extend_from_slice(phase);
        v.push(*power);
    }
    v.push(l.total_w);
    v.push(l.total_w);
    v.push(l.pv_w);
    v
}

fn tolerance(cap: f64) -> f64 {
    EPS * (1.0 + cap.abs())
}

fn assert_within_caps(case: &Case, amps: &[f64], phases: &[u8], what: &str) {
    let caps = caps(case);
    let used = limits(&loads(case, amps, phases));
    for (k, (u, c)) in used.iter().zip(&caps).enumerate() {
        assert!(
            *u <= c + tolerance(*c) || *u <= EPS,
            "{what}: limit {k} carries {u} > cap {c}"
        );
    }
}

fn hi(case: &Case, i: usize) -> f64 {
    let c = &case.connectors[i];
    let lo = (c.min_a / c.step_a - 1e-9).ceil() * c.step_a;
    let ev = (case.ev_max[i] / c.step_a + 1e-9).floor() * c.step_a;
    ((c.max_a / c.step_a + 1e-9).floor() * c.step_a)
        .min(ev)
        .max(lo)
}

fn lo(c: &ConnectorSpec) -> f64 {
    (c.min_a / c.step_a - 1e-9).ceil() * c.step_a
}

fn assert_setpoint_shape(case: &Case, amps: &[f64], what: &str) {
    for (i, c) in case.connectors.iter().enumerate() {
        let x = amps[i];
        if x == 0.0 {
            continue;
        }
        assert!(
            case.wanting[i] != 0,
            "{what}: connector {i} not wanting gets {x}"
        );
        assert!(
            x >= lo(c) - EPS && x <= hi(case, i) + EPS,
            "{what}: {i} at {x} outside [min, max]"
        );
        let steps = x / c.step_a;
        assert!(
            (steps - steps.round()).abs() < 1e-6,
            "{what}: {i} at {x} is no multiple of {}",
            c.step_a
        );
    }
}

fn gap(p: &[f64; 3]) -> f64 {
    p.iter().copied().fold(f64::MIN, f64::max) - p.iter().copied().fold(f64::MAX, f64::min)
}

/// Phase currents per node including base load.
fn phase_currents(case: &Case, amps: &[f64], phases: &[u8]) -> Vec<[f64; 3]> {
    let l = loads(case, amps, phases);
    (0..case.nodes.len())
        .map(|n| std::array::from_fn(|p| l.phase[n][p] + case.base[3 * n + p]))
        .collect()
}

/// Whether raising connector `i` by `delta` keeps every limit (unbalance included).
fn can_raise(case: &Case, out: &Allocation, i: usize, delta: f64) -> bool {
    let mut amps = out.target_a.clone();
    let before = phase_currents(case, &amps, &out.phases);
    amps[i] += delta;
    let caps = caps(case);
    let used = limits(&loads(case, &amps, &out.phases));
    if used.iter().zip(&caps).any(|(u, c)| *u > c + tolerance(*c)) {
        return false;
    }
    let after = phase_currents(case, &amps, &out.phases);
    case.nodes
        .iter()
        .enumerate()
        .all(|(n, node)| gap(&after[n]) <= node.unbalance_cap_a.max(gap(&before[n])) + EPS)
}

fn run(case: &Case, settings: Settings) -> Allocation {
    let mut alloc = case.allocator(settings);
    let mut out = Allocation::default();
    alloc.allocate(&case.input(1000.0), &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn targets_and_setpoints_keep_every_limit(case in case()) {
        let out = run(&case, Settings::default());
        assert_within_caps(&case, &out.target_a, &out.phases, "target");
        assert_within_caps(&case, &out.setpoint_a, &out.phases, "setpoint");
        assert_setpoint_shape(&case, &out.target_a, "target");
        assert_setpoint_shape(&case, &out.setpoint_a, "setpoint");
    }

    #[test]
    fn deadline_floors_keep_every_limit_and_are_granted_where_they_fit(
        case in case(),
        asks in prop::collection::vec((0u32..40, 0u32..1000), 24),
    ) {
        let c = case.connectors.len();
        let floors: Vec<f64> = asks[..c].iter().map(|&(a, _)| f64::from(a)).collect();
        let laxity: Vec<f64> = asks[..c].iter().map(|&(_, l)| f64::from(l)).collect();
        let mut alloc = case.allocator(Settings::default());
        let mut out = Allocation::default();
        let input = CycleInput { floor_a: &floors, laxity_s: &laxity, ..case.input(1000.0) };
        alloc.allocate(&input, &mut out).unwrap();
        assert_within_caps(&case, &out.target_a, &out.phases, "target");
        assert_within_caps(&case, &out.setpoint_a, &out.phases, "setpoint");
        assert_setpoint_shape(&case, &out.target_a, "target");
        assert_setpoint_shape(&case, &out.setpoint_a, "setpoint");
        // Pareto still: no admitted connector can take one more step.
        for (i, conn) in case.connectors.iter().enumerate() {
            let x = out.target_a[i];
            if x > 0.0 && x + conn.step_a <= hi(&case, i) + EPS {
                prop_assert!(!can_raise(&case, &out, i, conn.step_a), "connector {i} at {x}");
            }
        }
    }

    #[test]
    fn unbalance_holds_unless_nothing_is_left_to_lower(case in case()) {
        let out = run(&case, Settings::default());
        let currents = phase_currents(&case, &out.target_a, &out.phases);
        for (n, node) in case.nodes.iter().enumerate() {
            if gap(&currents[n]) <= node.unbalance_cap_a + EPS {
                continue;
            }
            // Over the limit only if some highest phase carries no one-phase
            // connector below this node: lowering anything else cannot help.
            let high = currents[n].iter().copied().fold(f64::MIN, f64::max);
            let one_phase_on = |p: usize| case.connectors.iter().enumerate().any(|(i, c)| {
                matches!((out.phases[i], c.phases), (1, PhaseMap::Single(q) | PhaseMap::Switchable(q)) if usize::from(q) == p)
                    && on_path(&case, c.node, n)
                    && out.target_a[i] > 0.0
            });
            prop_assert!(
                (0..3).any(|p| currents[n][p] >= high - EPS && !one_phase_on(p)),
                "node {n} gap {} > {} with one-phase current on every highest phase",
                gap(&currents[n]), node.unbalance_cap_a
            );
        }
    }

    #[test]
    fn no_admitted_connector_can_take_one_more_step(case in case()) {
        let out = run(&case, Settings::default());
        for (i, c) in case.connectors.iter().enumerate() {
            let x = out.target_a[i];
            if x > 0.0 && x + c.step_a <= hi(&case, i) + EPS {
                prop_assert!(
                    !can_raise(&case, &out, i, c.step_a),
                    "connector {i} at {x} could take one more step of {}", c.step_a
                );
            }
        }
    }

    #[test]
    fn fair_shares_are_weighted_max_min_fair_and_targets_within_one_step(case in case()) {
        // Cap tightening for unbalance is fair only within the tightened set
        // (allocation.md §3.3): its own property covers it.
        let mut case = case;
        case.nodes.iter_mut().for_each(|n| n.unbalance_cap_a = f64::INFINITY);
        let out = run(&case, Settings::default());
        let caps = caps(&case);
        let used = limits(&loads(&case, &out.fair_a, &out.phases));
        for (i, ci) in case.connectors.iter().enumerate() {
            let (fair, target) = (out.fair_a[i], out.target_a[i]);
            if fair <= 0.0 {
                prop_assert!(target == 0.0);
                continue;
            }
            prop_assert!(target >= fair - ci.step_a - EPS, "{i}: target {target} more than a step below {fair}");
            // At its minimum or maximum it is not held by a shared limit.
            if fair <= lo(ci) + EPS || fair >= hi(&case, i) - EPS {
                continue;
            }
            // A saturated limit in which no same-tier member above its own
            // minimum has a higher weighted level: i's bottleneck.
            let level = fair / ci.weight;
            let bottleneck = (0..caps.len()).any(|k| {
                coefficient(&case, &out, k, i) > 0.0
                    && used[k] >= caps[k] - tolerance(caps[k])
                    && case.connectors.iter().enumerate().all(|(j, cj)| {
                        let fj = out.fair_a[j];
                        cj.priority != ci.priority
                            || fj <= lo(cj) + EPS
                            || coefficient(&case, &out, k, j) == 0.0
                            || fj / cj.weight <= level + EPS
                    })
            });
            prop_assert!(bottleneck, "connector {i} at {fair} has no bottleneck");
        }
    }

    #[test]
    fn same_input_same_output(case in case()) {
        let mut a = case.allocator(Settings::default());
        let mut b = case.allocator(Settings::default());
        let (mut oa, mut ob) = (Allocation::default(), Allocation::default());
        for step in 0..3 {
            let now = 100.0 * f64::from(step);
            a.allocate(&case.input(now), &mut oa).unwrap();
            b.allocate(&case.input(now), &mut ob).unwrap();
            prop_assert_eq!(&oa, &ob);
        }
    }

    #[test]
    fn raising_an_all_covering_cap_never_lowers_the_top_tier(case in case(), extra_kw in 1u32..40) {
        let mut low = case.clone();
        // Unbalance cap tightening is a heuristic outside max-min theory.
        low.nodes.iter_mut().for_each(|n| n.unbalance_cap_a = f64::INFINITY);
        low.gop = low.gop.min(30_000.0);
        let mut high = low.clone();
        high.gop += f64::from(extra_kw) * 1000.0;
        let (ol, oh) = (run(&low, Settings::default()), run(&high, Settings::default()));
        let admitted = |o: &Allocation| o.target_a.iter().map(|x| *x > 0.0).collect::<Vec<_>>();
        prop_assume!(admitted(&ol) == admitted(&oh) && ol.phases == oh.phases);
        // Lower tiers get what higher tiers leave in the inner limits, so only
        // the top admitted tier is monotone (max-min fairness is not monotone
        // in general: see `max_min_fairness_is_not_monotone_in_an_inner_cap`).
        let top = case.connectors.iter().enumerate().filter(|(i, _)| ol.target_a[*i] > 0.0).map(|(_, c)| c.priority).max();
        // Rounding leftovers move between members (a 3-phase step frees three
        // 1-phase steps of power): allow the tier's total rounding leftover.
        let coarse: f64 = case
            .connectors
            .iter()
            .enumerate()
            .filter(|(i, c)| Some(c.priority) == top && ol.target_a[*i] > 0.0)
            .map(|(_, c)| 3.0 * c.step_a)
            .sum();
        for (i, c) in case.connectors.iter().enumerate() {
            if Some(c.priority) != top {
                continue;
            }
            prop_assert!(
                oh.target_a[i] >= ol.target_a[i] - coarse - EPS,
                "connector {i}: {} with the higher cap, {} with the lower", oh.target_a[i], ol.target_a[i]
            );
        }
    }

    #[test]
    fn transitions_keep_every_limit(case in case(), steps in prop::collection::vec((0u32..30, 0u32..40, any::<u64>()), 1..6)) {
        check_transitions(&case, &steps, false);
    }

    #[test]
    fn transitions_keep_every_limit_as_evs_draw_on_one_phase(case in case(), steps in prop::collection::vec((0u32..30, 0u32..40, any::<u64>()), 1..6)) {
        check_transitions(&case, &steps, true);
    }
}

/// Runs `case` through `steps` (time step, base load shift, seed), checking every
/// limit at each: with `one_phase_evs`, the seed also moves the EVs at three-phase
/// connectors onto one phase or back (`Allocator::set_ev_phase`), and the limits
/// count them where they draw.
fn check_transitions(case: &Case, steps: &[(u32, u32, u64)], one_phase_evs: bool) {
    let settings = Settings {
        settle_s: 8.0,
        change_interval_s: 3.0,
        ramp_a_per_s: 2.0,
        min_on_s: 20.0,
        min_off_s: 10.0,
        phase_switch_s: 15.0,
        ..Settings::default()
    };
    let mut alloc = case.allocator(settings);
    let mut out = Allocation::default();
    let mut current = case.clone();
    let mut now = 0.0;
    let mut old: Option<Allocation> = None;
    for &(dt, base_shift, seed) in steps {
        now += f64::from(dt);
        // Vary the base load and who wants current, deterministically from the seed.
        for (k, b) in current.base.iter_mut().enumerate() {
            *b = (case.base[k]
                + f64::from((seed >> (k % 60)) as u32 & 1) * f64::from(base_shift) * 0.5)
                .max(-10.0);
        }
        for (i, w) in current.wanting.iter_mut().enumerate() {
            *w = u8::from((seed >> (i % 64)) & 3 != 0);
        }
        for (i, c) in current.connectors.iter_mut().enumerate() {
            if !one_phase_evs || case.connectors[i].phases != PhaseMap::Three {
                continue;
            }
            let pick = (seed.rotate_left(3 * i as u32 + 1) & 7) as u8;
            let phase = (pick < PHASES as u8).then_some(pick);
            alloc.set_ev_phase(i, phase).unwrap();
            c.phases = phase.map_or(PhaseMap::Three, PhaseMap::Single);
            // What it was sent counts as drawn where it draws now.
            if let Some(prev) = &mut old {
                prev.phases[i] = if phase.is_some() { 1 } else { 3 };
            }
        }
        alloc.allocate(&current.input(now), &mut out).unwrap();
        assert_within_caps(&current, &out.target_a, &out.phases, "target");
        assert_within_caps(&current, &out.setpoint_a, &out.phases, "setpoint");
        assert_setpoint_shape(&current, &out.setpoint_a, "setpoint");
        if let Some(prev) = &old {
            assert_transition(&current, prev, &out);
        }
        old = Some(out.clone());
    }
}

/// During the change, each limit carries at most its cap when every connector
/// draws the larger of its old and new setpoint, unless the old setpoints
/// alone exceeded it, in which case nobody in it was raised.
fn assert_transition(case: &Case, prev: &Allocation, out: &Allocation) {
    let caps = caps(case);
    let old = limits(&loads(case, &prev.setpoint_a, &prev.phases));
    let n = case.nodes.len();
    let mut worst = vec![0.0; caps.len()];
    let mut raised = vec![false; caps.len()];
    for (i, c) in case.connectors.iter().enumerate() {
        let before = draw(c, prev.phases[i], prev.setpoint_a[i]);
        let after = draw(c, out.phases[i], out.setpoint_a[i]);
        let most: [f64; 3] = std::array::from_fn(|p| before[p].max(after[p]));
        let (wb, wa) = (
            (before.iter().sum::<f64>()) * V,
            (after.iter().sum::<f64>()) * V,
        );
        for node in 0..n {
            if !on_path(case, c.node, node) {
                continue;
            }
            for p in 0..3 {
                worst[4 * node + p] += most[p];
                raised[4 * node + p] |= after[p] > before[p] + EPS;
            }
            worst[4 * node + 3] += wb.max(wa);
            raised[4 * node + 3] |= wa > wb + EPS;
        }
        let g = 4 * n;
        for (k, counts) in [(g, true), (g + 1, true), (g + 2, case.pv[i] != 0)] {
            if counts {
                worst[k] += wb.max(wa);
                raised[k] |= wa > wb + EPS;
            }
        }
    }
    for k in 0..caps.len() {
        let over_before = old[k] > caps[k] + tolerance(caps[k]);
        assert!(
            worst[k] <= caps[k] + tolerance(caps[k])
                || (over_before && !raised[k])
                || worst[k] <= EPS,
            "limit {k}: sum of max(old, new) {} > cap {} (old alone {})",
            worst[k],
            caps[k],
            old[k]
        );
    }
}

fn coefficient(case: &Case, out: &Allocation, k: usize, j: usize) -> f64 {
    let n = case.nodes.len();
    let c = &case.connectors[j];
    let d = draw(c, out.phases[j], 1.0);
    let power = (d[0] + d[1] + d[2]) * V;
    if k < 4 * n {
        let node = k / 4;
        if !on_path(case, c.node, node) {
            return 0.0;
        }
        if k % 4 == 3 {
            power
        } else {
            d[k % 4]
        }
    } else if k == 4 * n + 2 {
        if case.pv[j] != 0 {
            power
        } else {
            0.0
        }
    } else {
        power
    }
}

fn two_level(feeder_cap: f64) -> Case {
    Case {
        nodes: vec![
            NodeSpec {
                parent: None,
                phase_cap_a: [30.0; 3],
                power_cap_w: f64::INFINITY,
                unbalance_cap_a: f64::INFINITY,
            },
            NodeSpec {
                parent: Some(0),
                phase_cap_a: [feeder_cap; 3],
                power_cap_w: f64::INFINITY,
                unbalance_cap_a: f64::INFINITY,
            },
        ],
        connectors: (0..3)
            .map(|i| ConnectorSpec {
                node: usize::from(i < 2),
                phases: PhaseMap::Single(0),
                min_a: 1.0,
                max_a: 32.0,
                step_a: 0.1,
                weight: 1.0,
                priority: 0,
            })
            .collect(),
        base: vec![0.0; 6],
        ev_max: vec![f64::INFINITY; 3],
        wanting: vec![1; 3],
        pv: vec![0; 3],
        gop: f64::INFINITY,
        peak: f64::INFINITY,
        pv_budget: f64::INFINITY,
    }
}

#[test]
fn max_min_fairness_is_not_monotone_in_an_inner_cap() {
    // Two connectors behind a 4 A feeder and one straight at the 30 A root:
    // raising the feeder cap to 30 A makes the root shared, so the third drops.
    let tight = run(&two_level(4.0), Settings::default());
    let loose = run(&two_level(30.0), Settings::default());
    assert_eq!(tight.target_a, vec![2.0, 2.0, 26.0]);
    assert_eq!(loose.target_a, vec![10.0, 10.0, 10.0]);
}

#[test]
fn equal_weights_share_equally_and_weights_share_proportionally() {
    let mut case = two_level(30.0);
    case.connectors[0].weight = 2.0;
    let out = run(&case, Settings::default());
    assert_eq!(out.target_a, vec![15.0, 7.5, 7.5]);
    assert!(out.reason.iter().all(|r| *r == Reason::PhaseCurrent));
    assert_eq!(out.binding_node, vec![0, 0, 0]);
    assert_eq!(out.binding_phase, vec![0, 0, 0]);
}

#[test]
fn pauses_the_last_in_line_and_rotates_after_min_on() {
    let mut case = two_level(30.0);
    case.connectors.iter_mut().for_each(|c| c.min_a = 12.0);
    let settings = Settings {
        min_on_s: 60.0,
        min_off_s: 30.0,
        ..Settings::default()
    };
    let mut alloc = case.allocator(settings);
    let mut out = Allocation::default();
    alloc.allocate(&case.input(0.0), &mut out).unwrap();
    assert_eq!(out.setpoint_a, vec![15.0, 15.0, 0.0]);
    assert_eq!(out.reason[2], Reason::PausedNoCapacity);
    alloc.allocate(&case.input(30.0), &mut out).unwrap();
    assert_eq!(
        out.setpoint_a,
        vec![15.0, 15.0, 0.0],
        "both inside their minimum on-time"
    );
    alloc.allocate(&case.input(61.0), &mut out).unwrap();
    assert_eq!(out.target_a[2], 15.0, "the waiting one gets its turn");
    assert_eq!(out.target_a.iter().filter(|x| **x == 0.0).count(), 1);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let case = two_level(30.0);
    let mut alloc = case.allocator(Settings::default());
    let mut out = Allocation::default();
    alloc.allocate(&case.input(10.0), &mut out).unwrap();
    let before = out.clone();
    let mut bad = case.clone();
    bad.base[1] = f64::NAN;
    assert!(alloc.allocate(&bad.input(11.0), &mut out).is_err());
    assert!(alloc.allocate(&case.input(9.0), &mut out).is_err());
    bad = case.clone();
    bad.wanting.pop();
    assert!(alloc.allocate(&bad.input(11.0), &mut out).is_err());
    alloc.allocate(&case.input(10.0), &mut out).unwrap();
    assert_eq!(out, before);
}
