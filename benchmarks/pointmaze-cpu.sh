#!/usr/bin/env bash
# The PointMaze table of BENCHMARKS.md, one maze after another (default: all three):
#   benchmarks/pointmaze-cpu.sh [umaze|medium|large ...]
# Per maze: make the recipe's data if it is missing, train the `pointmaze-<maze>-cpu` preset into
# runs/pointmaze-<maze>-cpu (a stopped run resumes from its last checkpoint), then evaluate over
# the preset's 50 episodes (random start and goal cells, reset seeds 1000-1049):
#   eval.json            TT goal search (the preset's plan.mode=goal)
#   eval_greedy.json     the same model decoding greedily with the goal: goal-conditioned BC
#   eval_behaviour.json  the data's own controller (shortest path + PD, noise 0.5)
# and copy the summaries and a training record (train.json) to benchmarks/results/pointmaze-cpu/<maze>/.
# TT=... picks the command (default: tt on PATH).
set -euo pipefail
TT=${TT:-tt}
mazes=("$@")
if [ ${#mazes[@]} -eq 0 ]; then mazes=(umaze medium large); fi
for maze in "${mazes[@]}"; do
  run=runs/pointmaze-$maze-cpu
  out=benchmarks/results/pointmaze-cpu/$maze
  $TT collect --recipe "pointmaze-$maze-quick"
  if [ -f "$run/config.json" ]; then
    $TT train --resume "$run" train.progress=false
  else
    $TT train --preset "pointmaze-$maze-cpu" --run-dir "$run" train.progress=false
  fi
  $TT eval "$run" eval.progress=false
  $TT eval "$run" plan.mode=greedy eval.progress=false --out "$run/eval-greedy"
  $TT eval "$run" --agent behaviour eval.progress=false
  mkdir -p "$out"
  cp "$run/eval/eval.json" "$out/eval.json"
  cp "$run/eval-greedy/eval.json" "$out/eval_greedy.json"
  cp "$run/eval/eval_behaviour.json" "$out/eval_behaviour.json"
  # training: the last logged step, and the wall time from the run's start to its final weights
  # (spans pauses if the run was resumed)
  start=$(stat -c %Y "$run/dataset.json")  # written once, when the run starts
  end=$(stat -c %Y "$run/model.safetensors")
  { printf '{"run": "%s", "wall_s_start_to_final_weights": %d, "last_logged": ' "$run" $((end - start))
    tail -n 1 "$run/metrics.jsonl" | tr -d '\n'; printf '}\n'; } > "$out/train.json"
done
