// Runs tasks one after another per key, concurrently across keys: two deploys to the same
// workload must not interleave their patches and rollout watches, while deploys to different
// workloads proceed in parallel.
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  get activeKeys(): number {
    return this.tails.size;
  }
}
