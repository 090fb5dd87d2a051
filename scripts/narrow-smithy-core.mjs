// An esbuild plugin: the Smithy packages the daemon signs its requests with take from @smithy/core only the
// files that define what they import.
//
// @smithy/signature-v4, @smithy/protocol-http and @smithy/hash-node import a handful of functions from
// @smithy/core's submodule indexes (`@smithy/core/serde`, `/protocols`, `/client`), which re-export
// hundreds. esbuild tree-shakes names, but splits code into chunks file by file, following every import
// of a file: so every file of those indexes that the S3 and control-plane clients use (protocols, codecs,
// schemas: 160 KB) landed in the chunks the idle daemon loads, and cost it 1.1 MB of memory
// (docs/decisions.md, "Single executable"). For these three packages each such import is answered by a
// module that re-exports each name it asks for from the file that defines it, found by following the
// indexes' `export { … } from` lines. A name that cannot be followed fails the build.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const NAMESPACE = 'narrow-smithy-core';
const SIGNING_PACKAGES = /[\\/]node_modules[\\/]@smithy[\\/](signature-v4|protocol-http|hash-node)[\\/]/;
const SUBMODULE = /^@smithy\/core\/[a-z-]+$/;

/** The names `file` imports or re-exports from `specifier` (the imported name of `a as b`). */
export function namesImported(text, specifier) {
  const names = new Set();
  const quoted = specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  for (const match of text.matchAll(new RegExp(`(?:import|export)\\s*(?:type\\s+)?\\{([^}]*)\\}\\s*from\\s*["']${quoted}["']`, 'g'))) {
    for (const part of match[1].split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0].trim();
      if (name) names.add(name);
    }
  }
  if (new RegExp(`(?:import|export)\\s*\\*[^;]*from\\s*["']${quoted}["']|import\\s+[\\w$]+\\s*(?:,|from)[^;]*["']${quoted}["']`).test(text)) {
    throw new Error(`a whole-module import of ${specifier}, which cannot be narrowed`);
  }
  return [...names];
}

function parseSpecifier(part) {
  const [imported, exported = imported] = part.trim().split(/\s+as\s+/).map((s) => s.trim());
  return { imported, exported };
}

class NotPassedOn extends Error {}

/**
 * The file that defines `name`, starting at the index `file`: follows `export { a as name } from "x"`, and
 * `import { a } from "x"` with a bare `export { a as name }`, into files (`./x`) and other submodules
 * (`@smithy/core/x`, through the async `resolveSubmodule`), until a file does not pass the name on.
 */
export async function definingFile(file, name, resolveSubmodule, seen = new Set()) {
  if (seen.has(`${file}#${name}`)) throw new Error(`${name}: a re-export cycle at ${file}`);
  seen.add(`${file}#${name}`);
  const text = readFileSync(file, 'utf8');
  const clauses = (pattern) => [...text.matchAll(pattern)].flatMap((m) => m[1].split(',').map((part) => ({ ...parseSpecifier(part), from: m[2] })));
  let link = clauses(/export\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']/g).find((c) => c.exported === name);
  if (!link) {
    const local = clauses(/export\s*\{([^}]*)\}()(?!\s*from)/g).find((c) => c.exported === name);
    link = local && clauses(/import\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']/g).find((c) => c.exported === local.imported);
  }
  if (!link) throw new NotPassedOn(`${name} is not re-exported by ${file}`);
  const target = link.from.startsWith('.')
    ? join(dirname(file), link.from.endsWith('.js') ? link.from : `${link.from}.js`)
    : await resolveSubmodule(link.from);
  try {
    return await definingFile(target, link.imported, resolveSubmodule, seen);
  } catch (error) {
    // The target does not pass it on: it defines it (or esbuild will say it does not).
    if (error instanceof NotPassedOn) return { file: target, name: link.imported };
    throw error;
  }
}

export const narrowSmithyCore = {
  name: NAMESPACE,
  setup(build) {
    build.onResolve({ filter: SUBMODULE }, (args) => (SIGNING_PACKAGES.test(args.importer) && args.pluginData !== NAMESPACE
      ? { path: `${args.path} for ${relative(build.initialOptions.absWorkingDir ?? process.cwd(), args.importer)}`, namespace: NAMESPACE, pluginData: { specifier: args.path, importer: args.importer, resolveDir: args.resolveDir } }
      : undefined));
    build.onLoad({ filter: /.*/, namespace: NAMESPACE }, async ({ pluginData: { specifier, importer, resolveDir } }) => {
      // Resolved by esbuild itself (the package's exports map), not by this plugin.
      const resolved = new Map();
      const resolve = async (spec) => {
        if (!resolved.has(spec)) {
          const result = await build.resolve(spec, { kind: 'import-statement', resolveDir, pluginData: NAMESPACE });
          if (result.errors.length > 0) throw new Error(`cannot resolve ${spec}: ${result.errors[0].text}`);
          resolved.set(spec, result.path);
        }
        return resolved.get(spec);
      };
      const index = await resolve(specifier);
      const lines = [];
      for (const name of namesImported(readFileSync(importer, 'utf8'), specifier)) {
        const found = await definingFile(index, name, resolve);
        lines.push(`export { ${found.name === name ? name : `${found.name} as ${name}`} } from ${JSON.stringify(found.file)};`);
      }
      return { contents: lines.join('\n'), loader: 'js', resolveDir: dirname(index) };
    });
  },
};
