// Runs an admin command: loads the client config (flags over environment), opens the client,
// reports errors (connection failures explained in one line).
import { type AdminApi, createAdminClient } from "./admin-client.js";
import { type ClientConfig, loadClientConfig } from "./client-config.js";
import { explainConnectionError } from "./connection-errors.js";
import { globalOptions } from "./globals.js";
import { printError, reportError } from "./output.js";

/** Runs fn with a connected AdminApi; on any error prints `error: …` and sets exit code 1. */
export async function withAdmin(fn: (admin: AdminApi, config: ClientConfig) => Promise<void>): Promise<void> {
  let admin: AdminApi | undefined;
  let config: ClientConfig | undefined;
  try {
    const { server, token } = globalOptions();
    config = loadClientConfig(process.env, { server, token });
    admin = createAdminClient(config);
    await fn(admin, config);
  } catch (err) {
    const explained = config ? await explainConnectionError(err, config) : undefined;
    process.exitCode = explained ? printError(explained) : reportError(err);
  } finally {
    admin?.close();
  }
}
