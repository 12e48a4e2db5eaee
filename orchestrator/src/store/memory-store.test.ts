import { MemoryStore } from "./memory-store.js";
import { storeContract } from "./store.contract.js";

storeContract("memory", async (options) => {
  const store = new MemoryStore({ retentionSeconds: options?.retentionSeconds });
  return { store, cleanup: () => store.close() };
});
