#!/bin/bash
# Probe: Pendulum data from a 70/30 mixture of the medium controller and the expert (both noise 0.05),
# quickstart model/budget; does beam search beat greedy decoding when the data's most common action is
# the worse one? Run from the repository root with the venv's `tt` on PATH (README of this folder).
set -e
export OMP_NUM_THREADS=${THREADS:-1}
R=runs/probe-mix7030
tt collect collect.env=Pendulum-v1 collect.policy=medium collect.episodes=420 collect.noise=0.05 collect.seed=0 collect.dataset_id=tt/pendulum/mixpart-medium-v0
tt collect collect.env=Pendulum-v1 collect.policy=expert collect.episodes=180 collect.noise=0.05 collect.seed=1 collect.dataset_id=tt/pendulum/mixpart-expert-v0
python -c "import minari; minari.combine_datasets([minari.load_dataset('tt/pendulum/mixpart-medium-v0'), minari.load_dataset('tt/pendulum/mixpart-expert-v0')], 'tt/pendulum/medium70-expert30-v0')"
# combine_datasets does not carry the references: the medium part's (its random and expert policies)
REF="data.ref_min_score=-1182.6641493012196 data.ref_max_score=-155.1073736055269"
tt train --preset quickstart --run-dir $R data.dataset=tt/pendulum/medium70-expert30-v0 name=probe-mix7030 $REF train.progress=false
tt eval $R eval.progress=false                                            # -> mix7030-seed0-beam.json
tt eval $R plan.mode=greedy --out $R/eval_greedy eval.progress=false      # -> mix7030-seed0-greedy.json
