#!/bin/bash
# Table 1 parts, each its own store; report after each part. Parts run at commit 059bca0
# from /work/t1, but am-adamw, whose update changed its bits after 059bca0 (issue 16),
# runs at the commit that changed it, from /work/t2:
#   git worktree add --detach /work/t1 059bca0; git worktree add --detach /work/t2 764c5ad
#   cp reports/table1_parts/queue.sh /work/t1/runs/; cd /work/t1
#   nohup nice -n 19 bash /work/t1/runs/queue.sh &   (a finished part: comment its line out)
# Stores and logs stay in /work/t1/runs/ for all parts; reports go to /work/t1/reports/table1_parts/.
cd /work/t1
RLLC=/work/main/.venv/bin/rllc
part() {  # worktree name task optimizers
  local tree=$1 name=$2 task=$3 opts=$4
  echo "$(date -u +%FT%TZ) start $name" >> runs/queue.log
  PYTHONPATH=$tree $RLLC bench $task --profile paper --out runs/$name --optimizers "$opts" --quiet >> runs/$name.out 2>&1
  local rc=$?  # before any expansion: $(date) would reset $?
  echo "$(date -u +%FT%TZ) bench rc=$rc $name" >> runs/queue.log
  PYTHONPATH=$tree $RLLC report runs/$name --out reports/table1_parts/$name >> runs/$name.out 2>&1
  rc=$?
  PYTHONPATH=$tree $RLLC store export runs/$name --out reports/table1_parts/${name}_runs.csv >> runs/$name.out 2>&1
  local export_rc=$?
  echo "$(date -u +%FT%TZ) report rc=$rc export rc=$export_rc $name" >> runs/queue.log
}
# done: part /work/t1 mnist-a mnist-mlp "M2(0.6),M(0.9)+M2(0.6),M(0.9)+M(0)+M2(0.6)"
# done: part /work/t1 mnist-b mnist-mlp "M3(0.6),M(0.9)+M(-0.9)+CM(0.9i),M(0.9)+M(0.6)"
# done: part /work/t1 mnist-c mnist-mlp "M(0.9)+M(0.6)+M(0),am-sgd"
# done: part /work/t1 mnist-d mnist-mlp "sgd,momentum,adam,M(0.9),M(0.9)+M(0),M(0.9)+M(0.8)+M(0.7)"
# done: part /work/t2 mnist-e mnist-mlp "am-adamw"
# done: part /work/t1 fmnist-a fmnist-mlp "M2(0.6),M(0.9)+M2(0.6),M(0.9)+M(0)+M2(0.6)"
# done: part /work/t1 fmnist-b fmnist-mlp "M3(0.6),M(0.9)+M(-0.9)+CM(0.9i),M(0.9)+M(0.6)"
# done: part /work/t1 fmnist-c fmnist-mlp "M(0.9)+M(0.6)+M(0),am-sgd"
# done: part /work/t1 fmnist-d fmnist-mlp "sgd,momentum,adam,M(0.9),M(0.9)+M(0),M(0.9)+M(0.8)+M(0.7)"
# done: part /work/t2 fmnist-e fmnist-mlp "am-adamw"
echo "$(date -u +%FT%TZ) all done" >> runs/queue.log
