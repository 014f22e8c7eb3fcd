// Validates Kubernetes manifests against the OpenAPI schemas bundled in the npm package
// kubernetes-models (ajv-compiled, offline).
//
//   node validate.mjs < objects.json     a JSON array of objects on stdin; one line per
//                                        problem on stdout; exit 1 when there is any
//   node validate.mjs --serve            one JSON array per input line, one JSON reply per
//                                        line: {"problems": [...]} (for the test suite, which
//                                        validates hundreds of renders with one process)
//
// An object whose apiVersion/kind has no schema in the package is a problem too: nothing
// passes unchecked.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const modules = new Map();

async function modelFor(apiVersion, kind) {
  if (!modules.has(apiVersion)) {
    try {
      modules.set(apiVersion, await import(`kubernetes-models/${apiVersion}`));
    } catch {
      modules.set(apiVersion, null);
    }
  }
  const mod = modules.get(apiVersion);
  return mod && typeof mod[kind] === "function" ? mod[kind] : null;
}

async function problemsOf(objects) {
  const problems = [];
  if (!Array.isArray(objects)) return ["input is not a JSON array of objects"];
  for (const [index, object] of objects.entries()) {
    const where = `#${index} ${object?.kind}/${object?.metadata?.name}`;
    if (typeof object?.apiVersion !== "string" || typeof object?.kind !== "string") {
      problems.push(`${where}: no apiVersion or kind`);
      continue;
    }
    const Model = await modelFor(object.apiVersion, object.kind);
    if (!Model) {
      problems.push(`${where}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      const details = (error.errors || []).map((e) => `${e.instancePath || "/"} ${e.message}`);
      problems.push(`${where}: ${details.length ? details.join("; ") : error.message}`);
    }
  }
  return problems;
}

if (process.argv[2] === "--serve") {
  for await (const line of createInterface({ input: process.stdin })) {
    let problems;
    try {
      problems = await problemsOf(JSON.parse(line));
    } catch (error) {
      problems = [`bad input: ${error.message}`];
    }
    process.stdout.write(JSON.stringify({ problems }) + "\n");
  }
} else {
  const problems = await problemsOf(JSON.parse(readFileSync(0, "utf8")));
  for (const line of problems) console.log(line);
  process.exit(problems.length ? 1 : 0);
}
