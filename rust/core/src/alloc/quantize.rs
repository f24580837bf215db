//! Step 4: round every target down to its device's step, then hand the
//! leftover back one step at a time, highest tier and lowest weighted level
//! first, wherever every limit (and unbalance limit) still holds. What stops
//! a connector's last step is its binding limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::admission::EPS;
use super::filling::{add_load, OWN};
use super::model::{floor_to_step, ordered_bits, Topology, PHASES};
use super::unbalance::Balance;
use super::Work;

/// Reusable buffers of the hand-back step.
#[derive(Debug, Default)]
pub(crate) struct QuantizeScratch {
    line: Line,
    turns: Vec<u128>,
    /// Every connector, those in the last hand-back's line first, in its order.
    rank: Vec<u32>,
    rest: Vec<u32>,
    pub(crate) balance: Balance,
}

/// The hand-back queue, smallest [`turn`] first: the connectors that start in
/// it, sorted once, merged with a small heap of those raised and queued again.
#[derive(Debug, Default)]
struct Line {
    sorted: Vec<u128>,
    next: usize,
    heap: BinaryHeap<Reverse<u128>>,
}

impl Line {
    /// Starts over with `turns` (emptied).
    fn start(&mut self, turns: &mut Vec<u128>) {
        self.sorted.clear();
        self.sorted.append(turns);
        self.sorted.sort_unstable();
        self.next = 0;
        self.heap.clear();
    }

    fn peek(&self) -> Option<u128> {
        let sorted = self.sorted.get(self.next).copied();
        match (sorted, self.heap.peek()) {
            (Some(a), Some(&Reverse(b))) => Some(a.min(b)),
            (a, b) => a.or(b.map(|r| r.0)),
        }
    }

    fn pop(&mut self) -> Option<u128> {
        let first = self.peek()?;
        if self.sorted.get(self.next) == Some(&first) {
            self.next += 1;
        } else {
            self.heap.pop();
        }
        Some(first)
    }

    fn push(&mut self, turn: u128) {
        self.heap.push(Reverse(turn));
    }
}

/// Rounds `work.x` down to each step (within `[lo, hi]`) and refreshes the loads.
pub(crate) fn round_down(topo: &Topology, work: &mut Work) {
    work.load.fill(0.0);
    for o in 0..work.order.len() {
        let i = work.order[o] as usize;
        let c = &topo.connectors[i];
        let x = floor_to_step(work.x[i], c.step_a).clamp(work.lo[i], work.hi[i]);
        work.x[i] = x;
        add_load(work, i, x);
    }
}

/// A connector's place in the hand-back queue (smallest first): higher tier,
/// then lower weighted level, then lower index, packed into one number.
fn turn(topo: &Topology, work: &Work, i: usize) -> u128 {
    let c = &topo.connectors[i];
    let level = ordered_bits(work.x[i] / c.weight);
    (u128::from(u8::MAX - c.priority) << 96) | (u128::from(level) << 32) | i as u128
}

/// The first physical limit (not a virtual unbalance cap) that one more step of
/// connector `i` would exceed.
fn physical_block(
    work: &Work,
    i: usize,
    step: f64,
    virtual_caps: std::ops::Range<usize>,
) -> Option<u32> {
    let coef = work.space.coefficients();
    work.terms(i)
        .iter()
        .map(|t| (t.k(), t.a(&coef)))
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
    sc.rest.clear();
    if sc.rank.len() != topo.connector_count() {
        sc.rank = (0..topo.connector_count() as u32).collect();
    }
    // Visit in the last line's order: turns that did not change then arrive
    // sorted, which the sort checks in linear time.
    for &i in &sc.rank {
        let iu = i as usize;
        let step = topo.connectors[iu].step_a;
        if !work.admitted[iu] {
            sc.rest.push(i);
        } else if work.x[iu] + step > work.hi[iu] + EPS {
            work.bound[iu] = OWN;
            sc.rest.push(i);
        } else if let Some(k) = physical_block(work, iu, step, virtual_start..virtual_end) {
            // Loads only grow from here on: blocked now is blocked for good.
            work.bound[iu] = k;
            sc.rest.push(i);
        } else {
            sc.turns.push(turn(topo, work, iu));
        }
    }
    sc.line.start(&mut sc.turns);
    sc.rank.clear();
    sc.rank
        .extend(sc.line.sorted.iter().map(|&turn| turn as u32));
    sc.rank.append(&mut sc.rest);
    // Connectors stopped only by an unbalance limit get another try after a
    // later raise: raising a light phase can make room on a heavy one.
    let mut raised = false;
    loop {
        let Some(t) = sc.line.pop() else {
            if !raised || sc.turns.is_empty() {
                break;
            }
            raised = false;
            sc.line.start(&mut sc.turns);
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
            if sc.line.peek().is_some_and(|first| first < next) {
                sc.line.push(next);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn the_line_merges_sorted_turns_with_pushed_ones_smallest_first() {
        let mut line = Line::default();
        let mut turns = vec![50, 10, 30];
        line.start(&mut turns);
        assert!(turns.is_empty());
        assert_eq!(line.pop(), Some(10));
        line.push(40);
        line.push(20);
        assert_eq!(line.peek(), Some(20));
        let rest: Vec<u128> = std::iter::from_fn(|| line.pop()).collect();
        assert_eq!(rest, vec![20, 30, 40, 50]);
        let mut again = vec![7];
        line.start(&mut again);
        assert_eq!((line.pop(), line.pop()), (Some(7), None));
    }
}
