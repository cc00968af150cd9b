#!/usr/bin/env bash
# The checks one short GPU lease runs (at most about 10 minutes, every part time-limited), without Ray or Optuna installed:
#   1. training throughput of every model (benchmarks/train_throughput.py), bf16, then fp32 and compiled AbsAE;
#   2. a short trial at dsprites-fig5's settings (batch 1024, bf16, full dsprites:v2, mixed noise), timed;
#   3. the CPU reproduction's AbsAE trials (`weakdis train absae-dsprites`, batch 64) on the GPU, several seeds
#      at once: dsprites-fig5-cpu-r1's AbsAE (R1 variant) and the papers' objective.
# Usage, from the repository root: bash benchmarks/gpu_check.sh OUTDIR [ARCHIVE]
# OUTDIR gets every trial's directory and log; ARCHIVE, if given, a .tar.gz of them without checkpoints.
# Every part has its own time limit, so one that fails or hangs leaves the others' figures.
# SMOKE=1 runs the same commands on the CPU with tiny sizes (a minute), to try the script before a lease.
set -u
OUT=${1:-gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
weakdis="python3 -m search.cli"   # the console script may not be installed (no pip install there)

if [ "${SMOKE:-0}" = 1 ]; then
  DEVICE=cpu; BATCH=16; ITERS=2; WARMUP=1; PAPER_STEPS=20; PAPER_WARMUP=10; PAPER_EVAL=10; PAPER_POINTS=400
  PAPER_DATA=2000; CPU_STEPS=20; CPU_WARMUP=10; SEEDS_R1="0"; SEEDS_PAPER="0"; LIMIT=300; THREADS=1
else
  DEVICE=cuda; BATCH=1024; ITERS=100; WARMUP=20; PAPER_STEPS=3000; PAPER_WARMUP=1000; PAPER_EVAL=1000
  PAPER_POINTS=15000; PAPER_DATA=null; CPU_STEPS=4000; CPU_WARMUP=1500; SEEDS_R1="0 1 2 3"; SEEDS_PAPER="0 1 2"
  LIMIT=1; THREADS=2
fi
limit() { timeout $(( $1 * LIMIT > 60 ? $1 * LIMIT : 60 )) "${@:2}"; }

{
  date -u '+%Y-%m-%d %H:%M UTC'; git rev-parse --short HEAD 2>/dev/null
  nvidia-smi -L 2>/dev/null
  python3 -c 'import torch, numpy, sklearn; print("torch", torch.__version__, "cuda", torch.version.cuda,
"numpy", numpy.__version__, "sklearn", sklearn.__version__)'
  nproc
} 2>&1 | tee "$OUT/environment.txt"

echo "== 1. throughput"
{
  limit 120 python3 benchmarks/train_throughput.py --device $DEVICE --batch-size $BATCH --precision bf16 \
    --warmup $WARMUP --iters $ITERS
  limit 45 python3 benchmarks/train_throughput.py --device $DEVICE --batch-size $BATCH --precision fp32 \
    --warmup $WARMUP --iters $ITERS --models absae
  limit 120 python3 benchmarks/train_throughput.py --device $DEVICE --batch-size $BATCH --precision bf16 \
    --compile --warmup $(( WARMUP + 10 )) --iters $ITERS --models absae
} 2>&1 | tee "$OUT/throughput.txt"

echo "== 2. dsprites-fig5 settings, $PAPER_STEPS steps"
start=$(date +%s)
limit 150 $weakdis train -q --out "$OUT/paper" --set model=absae --set dataset=dsprites:v2 --set beta=1.0 \
  --set steps=$PAPER_STEPS --set warmup_steps=$PAPER_WARMUP --set batch_size=$BATCH --set rel_batch_size=128 \
  --set lr=1e-4 --set latent_dim=8 --set tau=1000 --set eval_every=$PAPER_EVAL --set eval_points=$PAPER_POINTS \
  --set data_images=$PAPER_DATA --set noise=mixed --set noise_level=0.3 --set precision=bf16 \
  --set device=$DEVICE --set seed=0 > "$OUT/paper.log" 2>&1
echo "rc=$? wall_s=$(( $(date +%s) - start ))" | tee -a "$OUT/paper.log"

echo "== 3. absae-dsprites (batch 64) on $DEVICE, seeds at once"
start=$(date +%s)
pids=()
for s in $SEEDS_R1; do
  limit 200 env OMP_NUM_THREADS=$THREADS $weakdis train absae-dsprites -q --out "$OUT/r1_s$s" --set device=$DEVICE \
    --set disc_r1=1 --set disc_restart=true --set steps=$CPU_STEPS --set warmup_steps=$CPU_WARMUP \
    --set prior_covariance_scale=1.0 --set prior_covariance_estimator=ledoit_wolf --set rel_encoder_weight=1 \
    --set seed=$s \
    > "$OUT/r1_s$s.log" 2>&1 &
  pids+=($!)
done
for s in $SEEDS_PAPER; do
  limit 200 env OMP_NUM_THREADS=$THREADS $weakdis train absae-dsprites -q --out "$OUT/paper_obj_s$s" \
    --set device=$DEVICE --set warmup_steps=$CPU_WARMUP --set steps=$(( CPU_STEPS * 3 / 4 )) --set seed=$s \
    > "$OUT/paper_obj_s$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; echo "pid $p rc=$?"; done
echo "wall_s=$(( $(date +%s) - start ))"

echo "== results"
python3 benchmarks/gpu_check_results.py "$OUT" | tee "$OUT/results.txt"
if [ $# -ge 2 ]; then
  tar -czf "$2" --exclude=checkpoint --exclude=checkpoint.previous --exclude=tensorboard -C "$(dirname "$OUT")" \
    "$(basename "$OUT")"
fi
