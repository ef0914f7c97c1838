#!/bin/bash
# Probe: Pendulum data from a 70/30 mixture of the medium controller and the expert (both noise 0.05),
# quickstart model/budget; does beam search beat greedy decoding when the data's most common action is the worse one?
set -e
cd /work/main
export OMP_NUM_THREADS=${THREADS:-1}
T=.venv/bin/tt
R=runs/probe-mix7030
REF="data.ref_min_score=-1182.6641493012196 data.ref_max_score=-155.1073736055269"
$T train --preset quickstart --run-dir $R data.dataset=tt/pendulum/medium70-expert30-v0 name=probe-mix7030 $REF train.progress=false 2>&1 | tail -3
$T eval $R eval.progress=false 2>&1 | tail -8
$T eval $R plan.mode=greedy --out $R/eval_greedy eval.progress=false 2>&1 | tail -8
echo PROBE-DONE
