// Runs an admin command: loads the client config, opens the client, reports errors.
import { type AdminApi, createAdminClient } from "./admin-client.js";
import { loadClientConfig } from "./client-config.js";
import { reportError } from "./output.js";

/** Runs fn with a connected AdminApi; on any error prints `error: …` and sets exit code 1. */
export async function withAdmin(fn: (admin: AdminApi) => Promise<void>): Promise<void> {
  let admin: AdminApi | undefined;
  try {
    admin = createAdminClient(loadClientConfig());
    await fn(admin);
  } catch (err) {
    process.exitCode = reportError(err);
  } finally {
    admin?.close();
  }
}
