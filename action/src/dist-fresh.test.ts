// The committed bundle must be what action/scripts/bundle.mjs builds from the current sources.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { actionDir } from "../../test/support/action.js";

for (const file of ["index.js", "action.js"]) {
  test(`action/dist/${file} is up to date`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "k8sdeploy-bundle-"));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await promisify(execFile)(process.execPath, [join(actionDir, "scripts", "bundle.mjs"), "--outdir", dir]);
    const [built, committed] = await Promise.all([
      readFile(join(dir, file), "utf8"),
      readFile(join(actionDir, "dist", file), "utf8").catch(() => ""),
    ]);
    if (built === committed) return t.pass();
    const lines = [built.split("\n"), committed.split("\n")] as const;
    const at = lines[0].findIndex((line, i) => line !== lines[1][i]);
    t.fail(
      `action/dist/${file} is stale: run \`npm run --workspace action bundle\` and commit action/dist/ ` +
        `(first difference at line ${at + 1}: ${JSON.stringify(lines[0][at]?.slice(0, 120))} ` +
        `vs committed ${JSON.stringify(lines[1][at]?.slice(0, 120))}).`,
    );
  });
}
