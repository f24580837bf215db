//! Step 4: round every target down to its device's step, then hand the
//! leftover back one step at a time, highest tier and lowest weighted level
//! first, wherever every limit (and unbalance limit) still holds. What stops
//! a connector's last step is its binding limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::admission::EPS;
use super::filling::{add_load, recompute_load, OWN};
use super::model::{floor_to_step, ordered_bits, Topology, PHASES};
use super::unbalance::Balance;
use super::Work;

/// Reusable buffers of the hand-back step.
#[derive(Debug, Default)]
pub(crate) struct QuantizeScratch {
    heap: BinaryHeap<Reverse<u128>>,
    turns: Vec<Reverse<u128>>,
    pub(crate) balance: Balance,
}

/// Rounds `work.x` down to each step (within `[lo, hi]`) and refreshes the loads.
pub(crate) fn round_down(topo: &Topology, work: &mut Work) {
    for &i in &work.order {
        let i = i as usize;
        let c = &topo.connectors[i];
        work.x[i] = floor_to_step(work.x[i], c.step_a).clamp(topo.lo_a[i], work.hi[i]);
    }
    recompute_load(work);
}

/// A connector's place in the hand-back queue (smallest first): higher tier,
/// then lower weighted level, then lower index, packed into one number.
fn turn(topo: &Topology, work: &Work, i: usize) -> Reverse<u128> {
    let c = &topo.connectors[i];
    let level = ordered_bits(work.x[i] / c.weight);
    Reverse((u128::from(u8::MAX - c.priority) << 96) | (u128::from(level) << 32) | i as u128)
}

/// The first physical limit (not a virtual unbalance cap) that one more step of
/// connector `i` would exceed.
fn physical_block(
    work: &Work,
    i: usize,
    step: f64,
    virtual_caps: std::ops::Range<usize>,
) -> Option<u32> {
    work.terms(i)
        .map(|t| (work.terms_k[t] as usize, work.terms_a[t]))
        .find_map(|(k, a)| {
            let over = work.load[k] + a * step > work.space.cap[k] + EPS;
            (over && !virtual_caps.contains(&k)).then_some(k as u32)
        })
}

/// Hands leftover steps back; sets `work.bound` to what stopped each connector.
pub(crate) fn hand_back(topo: &Topology, work: &mut Work, base: &[f64], sc: &mut QuantizeScratch) {
    sc.balance.reset(topo, work, base);
    let virtual_start = 4 * topo.node_count();
    let virtual_end = 7 * topo.node_count();
    sc.turns.clear();
    for &i in &work.order {
        let i = i as usize;
        let step = topo.connectors[i].step_a;
        if work.x[i] + step > work.hi[i] + EPS {
            work.bound[i] = OWN;
        } else if let Some(k) = physical_block(work, i, step, virtual_start..virtual_end) {
            // Loads only grow from here on: blocked now is blocked for good.
            work.bound[i] = k;
        } else {
            sc.turns.push(turn(topo, work, i));
        }
    }
    sc.heap.clear();
    sc.heap.extend(sc.turns.drain(..));
    // Connectors stopped only by an unbalance limit get another try after a
    // later raise: raising a light phase can make room on a heavy one.
    let mut raised = false;
    loop {
        let Some(Reverse(t)) = sc.heap.pop() else {
            if !raised || sc.turns.is_empty() {
                break;
            }
            raised = false;
            sc.heap.extend(sc.turns.drain(..));
            continue;
        };
        let i = (t & u128::from(u32::MAX)) as usize;
        let step = topo.connectors[i].step_a;
        // Raise `i` while it stays first in line, without touching the heap.
        loop {
            if work.x[i] + step > work.hi[i] + EPS {
                work.bound[i] = OWN;
                break;
            }
            let mut block = physical_block(work, i, step, virtual_start..virtual_end);
            if block.is_none() {
                if let Some((node, p)) = sc.balance.blocks(topo, work, i, step) {
                    block = Some((virtual_start + PHASES * node + p) as u32);
                    sc.turns.push(turn(topo, work, i));
                }
            }
            if let Some(k) = block {
                work.bound[i] = k;
                break;
            }
            work.x[i] = ((work.x[i] / step).round() + 1.0) * step;
            add_load(work, i, step);
            sc.balance.add(topo, work, i, step);
            raised = true;
            let next = turn(topo, work, i);
            if sc.heap.peek().is_some_and(|top| top.0 < next.0) {
                sc.heap.push(next);
                break;
            }
        }
    }
}
