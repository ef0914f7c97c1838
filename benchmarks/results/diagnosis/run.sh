#!/bin/bash
# Issue 28's diagnosis, every command, resumable: each step is skipped when its output exists.
# Run from the repository root after `make install` and `tt collect --recipe hopper-quick`.
# The recipe's PPO run differs by CPU kind (see BENCHMARKS.md "Diagnosis"): results from two
# machine kinds are not comparable; results/ names the machine in each cell JSON.
# One core per lane: OMP_NUM_THREADS=1; run lanes side by side on a 2-core machine.
set -euo pipefail
W=${W:-runs/quality/diag-g0.99}
OUT=benchmarks/results/diagnosis
D=tt/hopper/medium-replay-quick-v1
R=$W/tt-hopper-medium-replay-quick-v1/seed${SEED:-0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

case "${1:-help}" in
  suite)     # today's preset, TT (greedy, beam) and DT, seeds SEEDS (default 0,1,2)
    tt bench quality suite=hopper-cpu datasets=$D seeds=${SEEDS:-0,1,2} methods=tt-greedy,tt-beam,dt \
      work_dir=$W results_dir=$OUT/g0.99 ;;
  gamma)     # H1: a longer discount for the value tokens (the planner follows data.discount)
    tt bench quality suite=hopper-cpu datasets=$D seeds=${SEEDS:-0} methods=tt-greedy,tt-beam \
      data.discount=0.999 work_dir=runs/quality/diag-g0.999 results_dir=$OUT/g0.999 ;;
  objective) # H1 from the data alone
    python $OUT/objective_rank.py ;;
  absorbing) # H2, planner side: imagined terminations absorb (same weights)
    [ -f $R/eval/tt-beam-absorbing/eval.json ] || tt eval --out $R/eval/tt-beam-absorbing $R plan.mode=beam plan.absorbing=true ;;
  oracle)    # H3: within-state ranking of the value head, then the ceiling of search
    tt bench oracle run=$R episodes=2 every=20 candidates=8 rollout=100
    cp $R/eval/oracle.json $OUT/oracle-seed${SEED:-0}.json
    tt bench oracle run=$R episodes=1 every=1 candidates=8 rollout=30 act=oracle
    cp $R/eval/oracle.json $OUT/oracle-ceiling-seed${SEED:-0}.json ;;
  proposals) # H4: the action proposals (same weights)
    for c in null 0.9; do
      [ -f $R/eval/tt-beam-cdf$c/eval.json ] || tt eval --out $R/eval/tt-beam-cdf$c $R plan.mode=beam plan.cdf_act=$c
    done ;;
  search)    # H5: the paper's search size on the same weights (first 10 episodes)
    [ -f $R/eval/tt-beam-h15b128/eval.json ] || tt eval --out $R/eval/tt-beam-h15b128 $R plan.mode=beam plan.horizon=15 plan.beam_width=128 eval.episodes=10 ;;
  *) echo "usage: $0 suite|gamma|objective|absorbing|oracle|proposals|search  (env: SEED, SEEDS, W)"; exit 2 ;;
esac
