"""Real data parallelism check for `vessel_nb.train`: every process trains on its own shard.

Runs the actual training loop on N processes and prints, per rank and epoch, the sample ids it trained on; then
asserts that all ranks ran the announced number of iterations, that within each epoch the shards are disjoint
apart from the documented padding, and that together they cover every sample.

    accelerate launch --num_processes 2 bench/train_shards.py             # 2 GPUs
    accelerate launch --num_processes 4 bench/train_shards.py --epochs 2  # 4 GPUs
    torchrun --nproc_per_node 2 bench/train_shards.py                      # CPU, 2 processes (gloo)
"""
import argparse, os, sys, tempfile
from collections import Counter

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--data", default=None, help="data folder (default: settings paths.data)")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "vessel_nb_train_shards"),
                    help="shared by all processes; overwritten")
    a = ap.parse_args()
    from accelerate.utils import gather_object
    from vessel_nb.train import TrainConfig, train
    run = train(TrainConfig(preset=a.preset, data=a.data, work_dir=a.work_dir, epochs=a.epochs, batch_size=a.batch_size,
                            grad_accum=a.grad_accum, overwrite=True, eval_every=0, save_every=10**9))
    p = run.plan
    seen = gather_object([(run.acc.process_index, run.seen)])
    if not run.main: return
    seen = dict(seen)
    world, per = p.world, p.per_rank
    print(f"\n{world} processes, {p.n} samples, {per} per process per epoch (padding {p.padding}), "
          f"{p.max_iters} iterations announced")
    for r in range(world):
        assert len(seen[r]) == p.max_iters * a.batch_size, f"rank {r} trained on {len(seen[r])} samples, plan says {p.max_iters * a.batch_size}"
    for e in range(int(p.epochs)):
        shards = [seen[r][e * per:(e + 1) * per] for r in range(world)]
        for r, s in enumerate(shards): print(f"epoch {e} rank {r}: {sorted(s)}")
        c = Counter(sum(shards, []))
        assert set(c) == set(range(p.n)), f"epoch {e}: samples {sorted(set(range(p.n)) - set(c))} not trained on"
        dup = sum(v - 1 for v in c.values())
        assert dup == p.padding, f"epoch {e}: {dup} repeated samples, padding is {p.padding}"
        overlap = [(i, j, len(set(shards[i]) & set(shards[j]))) for i in range(world) for j in range(i + 1, world)]
        print(f"epoch {e}: union covers all {p.n} samples; pairwise overlaps {overlap} (padding {p.padding})")
        if p.padding == 0: assert all(o == 0 for *_, o in overlap), "shards overlap without padding"
    print("OK: disjoint shards, full coverage, equal iteration counts")

if __name__ == "__main__": main()
