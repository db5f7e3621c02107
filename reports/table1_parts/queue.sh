#!/bin/bash
# Table 1 parts, each its own store; report after each part. Run from the 059bca0 worktree:
#   git worktree add --detach /work/t1 059bca0; cp reports/table1_parts/queue.sh /work/t1/runs/
#   nohup nice -n 19 bash /work/t1/runs/queue.sh &   (a finished part: comment its line out)
cd /work/t1
export PYTHONPATH=/work/t1
RLLC=/work/main/.venv/bin/rllc
part() {  # name task optimizers
  local name=$1 task=$2 opts=$3
  echo "$(date -u +%FT%TZ) start $name" >> runs/queue.log
  $RLLC bench $task --profile paper --out runs/$name --optimizers "$opts" --quiet >> runs/$name.out 2>&1
  echo "$(date -u +%FT%TZ) bench rc=$? $name" >> runs/queue.log
  $RLLC report runs/$name --out reports/table1_parts/$name >> runs/$name.out 2>&1
  $RLLC store export runs/$name --out reports/table1_parts/${name}_runs.csv >> runs/$name.out 2>&1
  echo "$(date -u +%FT%TZ) report rc=$? $name" >> runs/queue.log
}
# done: part mnist-a mnist-mlp "M2(0.6),M(0.9)+M2(0.6),M(0.9)+M(0)+M2(0.6)"
part mnist-b mnist-mlp "M3(0.6),M(0.9)+M(-0.9)+CM(0.9i),M(0.9)+M(0.6)"
part mnist-c mnist-mlp "M(0.9)+M(0.6)+M(0),am-sgd,am-adamw"
part mnist-d mnist-mlp "sgd,momentum,adam,M(0.9),M(0.9)+M(0),M(0.9)+M(0.8)+M(0.7)"
part fmnist-a fmnist-mlp "M2(0.6),M(0.9)+M2(0.6),M(0.9)+M(0)+M2(0.6)"
part fmnist-b fmnist-mlp "M3(0.6),M(0.9)+M(-0.9)+CM(0.9i),M(0.9)+M(0.6)"
part fmnist-c fmnist-mlp "M(0.9)+M(0.6)+M(0),am-sgd,am-adamw"
part fmnist-d fmnist-mlp "sgd,momentum,adam,M(0.9),M(0.9)+M(0),M(0.9)+M(0.8)+M(0.7)"
echo "$(date -u +%FT%TZ) all done" >> runs/queue.log
